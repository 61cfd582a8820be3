"""The compliance officer's admin: what needs attention, release review, decisions, revocation.

Pages read through the release selectors (restricted to the user's business units); every
write goes through ``governance.services.releases``. Nobody adds, edits or deletes a release
or a decision here.
"""

import base64
import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe

from config.errors import DomainError, refusal_text

from ..charts.badges import verdict_badge
from ..charts.gates import gate_run_charts
from ..charts.lineage import graph_svg
from ..models import ApprovalPolicy, ReleaseRequest
from ..rules.limits import JUSTIFICATION_MIN_LENGTH
from ..rules.releases import Decision, State, state_label
from ..selectors.lineage import upstream
from ..selectors.releases import release_get, release_list, releases_needing_attention
from .base import LedgerHistory, lineage_href
from ..services.releases import (
    decisions_open_to,
    release_decide,
    release_outcome_after,
    release_revoke,
    release_still_needs,
)

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


DECISION_WORDS = {
    Decision.APPROVE: ("Approve", "approve"),
    Decision.REJECT: ("Reject", "reject"),
    Decision.OVERRIDE: ("Override the inconclusive gate", "override the inconclusive gate of"),
}


def attestation_facts(envelope) -> dict | None:
    """The signed statement of a DSSE envelope, decoded for reading (not verified: the pipeline and
    the offline verifier verify it): statement and predicate types, subjects, signer key ids."""
    if not envelope:
        return None
    try:
        stmt = json.loads(base64.b64decode(envelope["payload"]))
    except (KeyError, TypeError, ValueError):
        return {"error": "The stored envelope's payload is not a readable statement."}
    predicate = stmt.get("predicate") or {}
    facts = [(k.replace("_", " "), v) for k, v in predicate.items() if not isinstance(v, (dict, list))]
    model = predicate.get("model") or {}
    if model:
        facts.append(("model", f"{model.get('name')} v{model.get('version')} ({model.get('business_unit')}, "
                               f"risk tier {model.get('risk_tier')})"))
    for gate in predicate.get("gates") or []:
        facts.append(("gate verdict", f"{gate.get('verdict')} (ledger #{gate.get('ledger_seq')})"))
    return {
        "statement_type": stmt.get("_type", ""),
        "predicate_type": stmt.get("predicateType", ""),
        "subjects": [(s.get("name", ""), ", ".join(f"{k}:{v}" for k, v in (s.get("digest") or {}).items()))
                     for s in stmt.get("subject", [])],
        "key_ids": [sig.get("keyid", "") for sig in envelope.get("signatures", [])],
        "payload_type": envelope.get("payloadType", ""),
        "facts": facts,
        "approvals": predicate.get("approvals") or [],
    }


@admin.register(ReleaseRequest)
class ReleaseRequestAdmin(LedgerHistory, admin.ModelAdmin):
    list_display = ["id", "model_version", "environment", "state_shown", "verdict_shown", "requester", "created_at"]
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

    @admin.display(description="state", ordering="state")
    def state_shown(self, obj):
        return state_label(obj.state)

    @admin.display(description="gate verdict", ordering="gate_verdict")
    def verdict_shown(self, obj):
        return mark_safe(verdict_badge(obj.gate_verdict))  # noqa: S308  charts.badges escapes every text

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("attention/", wrap(self.attention_view), name="governance_releaserequest_attention"),
            path("<int:pk>/review/", wrap(self.review_view), name="governance_releaserequest_review"),
            path("<int:pk>/approve/", wrap(self.decide_view), {"decision": Decision.APPROVE},
                 name="governance_releaserequest_approve"),
            path("<int:pk>/reject/", wrap(self.decide_view), {"decision": Decision.REJECT},
                 name="governance_releaserequest_reject"),
            path("<int:pk>/override/", wrap(self.decide_view), {"decision": Decision.OVERRIDE},
                 name="governance_releaserequest_override"),
            path("<int:pk>/revoke/", wrap(self.revoke_view), name="governance_releaserequest_revoke"),
            path("<int:pk>/attestation.json", wrap(self.attestation_view),
                 name="governance_releaserequest_attestation"),
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

    def _release(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return release_get(user=request.user, pk=pk)

    @staticmethod
    def _may_revoke(release, user):
        return (
            release.state == State.APPROVED
            and user.has_perm("governance.revoke_releaserequest")
            and ReleaseRequest.objects.for_user(user, write=True).filter(pk=release.pk).exists()
        )

    def review_view(self, request, pk):
        """A release request with its lineage, gate evidence, decisions so far and what is still
        needed; the decisions open to the user are links to their confirmation pages."""
        release = self._release(request, pk)
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        user = request.user
        # The decisions offered are exactly those the service accepts (one rule, one place).
        open_to = {decision for decision, _ in decisions_open_to(release=release, user=user)}
        try:
            lineage = graph_svg(upstream(release.model_version, user=user), href=lineage_href)
        except Exception as exc:  # a picture must not hide the decisions
            lineage = None
            messages.warning(request, f"The lineage picture could not be drawn: {exc}")
        approvals = list(release.approvals.select_related("approver"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": release,
            "release": release,
            "state_label": state_label(release.state),
            "title": f"Release request {release.pk}: {release.model_version} → {release.environment}",
            "approvals": approvals,
            "my_decisions": [a for a in approvals if a.approver_id == user.pk],
            "still_needs": release_still_needs(release),
            "lineage_svg": lineage,
            "gate_charts": gate_run_charts(release.gate_run.result) if release.gate_run_id else [],
            "gate_run": release.gate_run if release.gate_run_id else None,
            "offered": [(d, DECISION_WORDS[d][0], reverse(f"admin:governance_releaserequest_{d}", args=[release.pk]))
                        for d in (Decision.APPROVE, Decision.REJECT, Decision.OVERRIDE) if d in open_to],
            "may_revoke": self._may_revoke(release, user),
            "attestation": attestation_facts(release.attestation),
            "ledger_entries_url": reverse("admin:audit_ledgerentry_changelist") + f"?subject={release.ledger_subject}",
        }
        return TemplateResponse(request, "admin/governance/releaserequest/review.html", context)

    def _confirm(self, request, release, *, action, heading, consequences, form, button, refusal=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": release,
            "release": release,
            "state_label": state_label(release.state),
            "title": heading,
            "action": action,
            "consequences": consequences,
            "form": form,
            "button": button,
            "refusal": refusal,
        }
        return TemplateResponse(request, "admin/governance/releaserequest/confirm.html", context)

    def decide_view(self, request, pk, decision):
        """GET: what DECISION would do (and the justification to give); POST: record it."""
        release = self._release(request, pk)
        user = request.user
        if not user.has_perm("governance.decide_releaserequest"):
            raise PermissionDenied
        roles = sorted({role for d, role in decisions_open_to(release=release, user=user) if d == decision})
        review = redirect("admin:governance_releaserequest_review", pk=release.pk)
        if request.method == "POST":
            # A decision no longer open (decided meanwhile, a second click) is put to the service
            # all the same, which says why it is refused.
            form = DecisionForm(request.POST, roles=roles or [request.POST.get("role", "")])
            if form.is_valid():
                try:
                    release_decide(release=release, actor=user, decision=decision, **form.cleaned_data)
                except (DomainError, ValidationError, PermissionDenied) as exc:
                    messages.error(request, refusal_text(exc))
                    return review
                messages.success(request, f"Your decision ({DECISION_WORDS[decision][0].lower()}) is recorded.")
                return review
        else:
            form = DecisionForm(roles=roles)
        verb = DECISION_WORDS[decision][1]
        consequences = []
        for role in roles:
            status, needs = release_outcome_after(release, user=user, decision=decision, role=role)
            if status == "approved":
                then = ("the request is approved: the release may be deployed to "
                        f"{release.environment} and a signed attestation is issued.")
            elif status == "rejected":
                then = "the request is rejected, finally: this version needs a new request to be released."
            else:
                then = "the request still needs " + "; ".join(needs) + "." if needs else "the request stays pending."
            consequences.append(f"As {role}: {then}")
        refusal = None if roles else "This decision is not open to you now (already decided, or not yours to make)."
        return self._confirm(
            request, release, action=decision,
            heading=f"{DECISION_WORDS[decision][1].capitalize()} release request {release.pk}?",
            consequences=[f"You {verb} release request {release.pk} ({release.model_version} → "
                          f"{release.environment}). Your decision and justification are recorded in the ledger "
                          "and cannot be withdrawn.", *consequences],
            form=form if roles else None, button=f"Yes, {DECISION_WORDS[decision][0].lower()}", refusal=refusal,
        )

    def revoke_view(self, request, pk):
        """GET: what revoking does (and the justification to give); POST: revoke."""
        release = self._release(request, pk)
        if not self._may_revoke(release, request.user):
            raise PermissionDenied
        form = RevokeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                release_revoke(release=release, actor=request.user, **form.cleaned_data)
            except (DomainError, ValidationError, PermissionDenied) as exc:
                messages.error(request, refusal_text(exc))
            else:
                messages.success(request, "The release is revoked.")
            return redirect("admin:governance_releaserequest_review", pk=release.pk)
        return self._confirm(
            request, release, action="revoke", heading=f"Revoke release {release.pk}?",
            consequences=[
                f"{release.model_version} may no longer be deployed to {release.environment}: the release-status "
                "API answers 'revoked' and its attestation no longer counts.",
                "A revocation is final and recorded in the ledger with your justification.",
            ],
            form=form, button="Yes, revoke this release",
        )

    def attestation_view(self, request, pk):
        """The release's DSSE envelope as a file, as pipelines fetch it."""
        release = self._release(request, pk)
        if not release.attestation:
            raise Http404("This release has no attestation.")
        response = HttpResponse(json.dumps(release.attestation, indent=2), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="release-{release.pk}-attestation.dsse.json"'
        return response


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(LedgerHistory, admin.ModelAdmin):
    list_display = ["risk_tier", "environment", "version", "digest", "created_by", "created_at"]
    list_filter = ["risk_tier", "environment"]
    readonly_fields = [f.name for f in ApprovalPolicy._meta.fields]

    def has_add_permission(self, request):
        return False  # new versions are published through the service (approval_policy_publish)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
