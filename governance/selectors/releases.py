"""Reads of release requests, restricted to the business units the user may see."""

from django.http import Http404

from ..models import Approval, ApprovalPolicy, ModelVersion, ReleaseRequest
from ..releases import Decision, State
from .access import restrict_to_units

UNIT_FIELD = "model__business_unit"


def release_list(*, user, state=None, environment=None):
    qs = ReleaseRequest.objects.select_related(
        "model__business_unit", "model_version", "requester", "approval_policy"
    ).order_by("-created_at", "-pk")
    if state:
        qs = qs.filter(state=state)
    if environment:
        qs = qs.filter(environment=environment)
    return restrict_to_units(qs, user, field=UNIT_FIELD)


def release_get(*, user, pk) -> ReleaseRequest:
    """The release PK if USER may see it; Http404 otherwise (another unit's looks absent)."""
    release = release_list(user=user).prefetch_related("approvals__approver").filter(pk=pk).first()
    if release is None:
        raise Http404("No such release request.")
    return release


def model_version_get(*, user, pk) -> ModelVersion:
    """The model version PK if USER may see its unit; Http404 otherwise."""
    mv = restrict_to_units(ModelVersion.objects.select_related("model__business_unit"), user, field=UNIT_FIELD)
    mv = mv.filter(pk=pk).first()
    if mv is None:
        raise Http404("No such model version.")
    return mv


def model_version_find(*, user, model: str, version: str, business_unit: str | None = None) -> ModelVersion:
    """The version VERSION of the model named MODEL in a unit USER may see; Http404 if none or ambiguous."""
    qs = restrict_to_units(
        ModelVersion.objects.select_related("model__business_unit").filter(model__name=model, version=version),
        user,
        field=UNIT_FIELD,
    )
    if business_unit:
        qs = qs.filter(model__business_unit__slug=business_unit)
    found = list(qs[:2])
    if len(found) != 1:
        raise Http404(
            "No such model version." if not found else "Several units have this model; name the business_unit."
        )
    return found[0]


def release_status(*, user, model: str, version: str, environment: str, business_unit: str | None = None) -> dict:
    """Is VERSION of MODEL approved for ENVIRONMENT? The latest request decides.

    Returns ``{approved, state, release, model_version}``; ``release`` is None when nothing was
    requested. An approved release's attestation is in ``release.attestation``.
    """
    mv = model_version_find(user=user, model=model, version=version, business_unit=business_unit)
    release = (
        ReleaseRequest.objects.filter(model_version=mv, environment=environment)
        .only("pk", "state", "attestation", "model_version_id", "environment", "created_at")
        .order_by("-created_at", "-pk")
        .first()
    )
    return {
        "approved": release is not None and release.state == State.APPROVED,
        "state": release.state if release else None,
        "release": release,
        "model_version": mv,
    }


def releases_needing_attention(*, user) -> dict:
    """What an officer or validator should look at: decisions awaiting them, inconclusive gates, revocations."""
    visible = release_list(user=user)
    awaiting = visible.filter(state=State.AWAITING_APPROVAL)
    decided = Approval.objects.filter(approver=user).exclude(decision=Decision.OVERRIDE).values("release")
    mine = awaiting.exclude(requester=user).exclude(pk__in=decided)
    if not user.has_perm("governance.decide_releaserequest"):
        mine = mine.none()  # nothing awaits the decision of someone who cannot decide
    return {
        "awaiting_decision": mine,
        "inconclusive": awaiting.filter(gate_verdict="inconclusive"),
        "gating": visible.filter(state__in=[State.SUBMITTED, State.GATING]),
        "revoked": visible.filter(state=State.REVOKED).order_by("-ended_at")[:20],
    }


def approval_policy_list():
    return ApprovalPolicy.objects.order_by("risk_tier", "environment", "-version")
