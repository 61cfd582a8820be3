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

from ..models import ApprovalPolicy, ReleaseRequest
from ..rules.releases import Decision, DecisionRefused, State, TransitionRefused
from ..rules.roles import COMPLIANCE_OFFICER, MODEL_RISK_VALIDATOR
from ..selectors.access import can_access_unit
from ..selectors.releases import release_get, release_list, releases_needing_attention
from ..services.releases import ReleaseConflict, release_decide, release_revoke

admin.site.index_template = "admin/custos_index.html"


class DecisionForm(forms.Form):
    role = forms.ChoiceField(help_text="The role you act in.")
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        min_length=10,
        help_text="Why: what you checked and what you relied on. Recorded with your decision.",
    )

    def __init__(self, *args, roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r, r) for r in roles]


class RevokeForm(forms.Form):
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), min_length=10)


def _decider_roles(user):
    return [r for r in user.groups.values_list("name", flat=True) if r in (COMPLIANCE_OFFICER, MODEL_RISK_VALIDATOR)]


def _lineage_svg(release, user):
    """The model version's upstream lineage as SVG (datasets → training run → model version)."""
    from ..charts.lineage import graph_svg
    from ..selectors.lineage import upstream

    return graph_svg(upstream(release.model_version, user=user))


def _gate_charts(release):
    """(title, svg) of the gate run's SHAP importance and by-group fairness charts, if it has them."""
    from ..charts.gates import fairness_charts, importance_chart
    from ..models import GateRun

    run = GateRun.objects.filter(pk=(release.gate_details or {}).get("run_id")).first()
    if run is None or not run.result:
        return []
    importance = importance_chart(run.result)
    # The SVGs are drawn by governance.gates.charts, which escapes every text it draws.
    return ([("SHAP importance", importance)] if importance else []) + fairness_charts(run.result)


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
        roles = _decider_roles(user)
        in_unit = can_access_unit(user, release.model.business_unit, write=True)
        may_decide = (
            release.state == State.AWAITING_APPROVAL
            and release.requester_id != user.pk
            and user.has_perm("governance.decide_releaserequest")
            and in_unit
            and bool(roles)
        )
        may_revoke = release.state == State.APPROVED and user.has_perm("governance.revoke_releaserequest") and in_unit
        decision_form = DecisionForm(roles=roles)
        revoke_form = RevokeForm()
        if request.method == "POST":
            action = request.POST.get("action")
            try:
                if action in (Decision.APPROVE, Decision.REJECT, Decision.OVERRIDE):
                    if not may_decide:
                        raise PermissionDenied
                    decision_form = DecisionForm(request.POST, roles=roles)
                    if decision_form.is_valid():
                        release_decide(release=release, actor=user, decision=action, **decision_form.cleaned_data)
                        messages.success(request, f"Your decision ({action}) is recorded.")
                        return redirect(request.path)
                elif action == "revoke":
                    if not may_revoke:
                        raise PermissionDenied
                    revoke_form = RevokeForm(request.POST)
                    if revoke_form.is_valid():
                        release_revoke(release=release, actor=user, **revoke_form.cleaned_data)
                        messages.success(request, "The release is revoked.")
                        return redirect(request.path)
                else:
                    messages.error(request, "Unknown action.")
            except (DecisionRefused, TransitionRefused, ReleaseConflict) as exc:
                messages.error(request, str(exc))
                return redirect(request.path)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
        try:
            lineage = _lineage_svg(release, user)
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
            "gate_charts": _gate_charts(release),
            "gate_run_id": (release.gate_details or {}).get("run_id"),
            "may_decide": may_decide,
            "may_override": may_decide and release.gate_verdict == "inconclusive",
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
