"""The compliance officer's admin: what needs attention, release review, decisions, revocation.

Pages read through the release selectors (restricted to the user's business units); every
write goes through ``governance.services.releases``. Nobody adds, edits or deletes a release
or a decision here.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from config.errors import DomainError, refusal_text

from ..charts.gates import gate_run_charts
from ..charts.lineage import graph_svg
from ..models import ApprovalPolicy, ReleaseRequest
from ..rules.limits import JUSTIFICATION_MIN_LENGTH
from ..rules.releases import Decision, State
from ..selectors.lineage import upstream
from ..selectors.releases import release_get, release_list, releases_needing_attention
from ..services.releases import decisions_open_to, release_decide, release_outcome, release_revoke

admin.site.index_template = "admin/custos_index.html"


class DecisionForm(forms.Form):
    role = forms.ChoiceField(help_text="The role you act in.")
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        min_length=JUSTIFICATION_MIN_LENGTH,
        help_text="Why: what you checked and what you relied on. Recorded with your decision.",
    )

    def __init__(self, *args, roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r, r) for r in roles]


class RevokeForm(forms.Form):
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), min_length=JUSTIFICATION_MIN_LENGTH
    )


@admin.register(ReleaseRequest)
class ReleaseRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "model_version", "environment", "state", "gate_verdict", "requester", "created_at"]
    list_filter = ["state", "environment", "gate_verdict"]
    search_fields = ["model__name", "model_version__version", "model_version__artifact_sha256"]
    list_select_related = ["model_version__model", "requester"]
    change_list_template = "admin/governance/releaserequest/change_list.html"

    def get_queryset(self, request):
        return release_list(user=request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("attention/", wrap(self.attention_view), name="governance_releaserequest_attention"),
            path("<int:pk>/review/", wrap(self.review_view), name="governance_releaserequest_review"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect("admin:governance_releaserequest_review", pk=object_id)

    def attention_view(self, request):
        """What needs the officer's attention, in the units they oversee."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Releases that need your attention",
            **releases_needing_attention(user=request.user),
        }
        return TemplateResponse(request, "admin/governance/releaserequest/attention.html", context)

    def review_view(self, request, pk):
        """A release request with its lineage, gate evidence, decisions so far and the decision forms."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        release = release_get(user=request.user, pk=pk)
        user = request.user
        # The decisions offered are exactly those the service accepts (one rule, one place).
        open_to = decisions_open_to(release=release, user=user)
        roles = sorted({role for _, role in open_to})
        may_revoke = (
            release.state == State.APPROVED
            and user.has_perm("governance.revoke_releaserequest")
            and ReleaseRequest.objects.for_user(user, write=True).filter(pk=release.pk).exists()
        )
        decision_form = DecisionForm(roles=roles)
        revoke_form = RevokeForm()
        if request.method == "POST":
            action = request.POST.get("action")
            if action in (Decision.APPROVE, Decision.REJECT, Decision.OVERRIDE) and not user.has_perm(
                "governance.decide_releaserequest"
            ):
                raise PermissionDenied
            if action == "revoke" and not may_revoke:
                raise PermissionDenied
            try:
                if action in (Decision.APPROVE, Decision.REJECT, Decision.OVERRIDE):
                    # A decision no longer open (someone decided meanwhile, a second click) is
                    # put to the service all the same, which says why it is refused.
                    decision_form = DecisionForm(request.POST, roles=roles or [request.POST.get("role", "")])
                    if decision_form.is_valid():
                        release_decide(release=release, actor=user, decision=action, **decision_form.cleaned_data)
                        messages.success(request, f"Your decision ({action}) is recorded.")
                        return redirect(request.path)
                elif action == "revoke":
                    revoke_form = RevokeForm(request.POST)
                    if revoke_form.is_valid():
                        release_revoke(release=release, actor=user, **revoke_form.cleaned_data)
                        messages.success(request, "The release is revoked.")
                        return redirect(request.path)
                else:
                    messages.error(request, "Unknown action.")
            except (DomainError, ValidationError, PermissionDenied) as exc:
                messages.error(request, refusal_text(exc))
                return redirect(request.path)
        try:
            lineage = graph_svg(upstream(release.model_version, user=user))
        except Exception as exc:  # a picture must not hide the decision forms
            lineage = None
            messages.warning(request, f"The lineage picture could not be drawn: {exc}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": release,
            "release": release,
            "title": f"Release request {release.pk}: {release.model_version} → {release.environment}",
            "approvals": release.approvals.select_related("approver"),
            "lineage_svg": lineage,
            "gate_charts": gate_run_charts(release.gate_run.result) if release.gate_run_id else [],
            "gate_run_id": release.gate_run_id,
            "outcome": release_outcome(release),
            "may_decide": bool(open_to),
            "may_approve": Decision.APPROVE in {decision for decision, _ in open_to},
            "may_reject": Decision.REJECT in {decision for decision, _ in open_to},
            "may_override": Decision.OVERRIDE in {decision for decision, _ in open_to},
            "may_revoke": may_revoke,
            "decision_form": decision_form,
            "revoke_form": revoke_form,
            "attestation_json": json.dumps(release.attestation, indent=2) if release.attestation else "",
        }
        return TemplateResponse(request, "admin/governance/releaserequest/review.html", context)


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    list_display = ["risk_tier", "environment", "version", "digest", "created_by", "created_at"]
    list_filter = ["risk_tier", "environment"]
    readonly_fields = [f.name for f in ApprovalPolicy._meta.fields]

    def has_add_permission(self, request):
        return False  # new versions are published through the service (approval_policy_publish)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
