"""What monitoring shows: plans, windows and findings the asking user may read, the monitoring
health governance's release-status API carries, and the attention panel."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from .vocabulary import iso_utc
from .models import Finding, Incident, MonitoringPlan, MonitoringWindow
from .vocabulary import VERDICTS


def plans_for(user):
    return MonitoringPlan.objects.for_user(user).select_related("model_version__model__business_unit", "release")


def plan_get(*, user, pk: int) -> MonitoringPlan | None:
    return plans_for(user).filter(pk=pk).first()


def windows_of(plan):
    return plan.windows.order_by("start")


def findings_for(user):
    return Finding.objects.for_user(user).select_related("plan__model_version__model", "window")


def incidents_for(user):
    return Incident.objects.for_user(user).select_related("plan__model_version__model", "finding")


def plan_health(plan, *, now=None) -> dict:
    """``ok`` / ``warn`` / ``alert`` / ``inconclusive`` from the last closed window and the open
    findings, or ``no data since …`` when no batch fed a window for longer than one window."""
    now = now or timezone.now()
    if plan.status != MonitoringPlan.Status.ACTIVE:
        return {"status": "no reference", "plan_id": plan.pk, "reason": plan.reference_problem}
    version = plan.versions.order_by("-version").first()
    length = timedelta(days=version.policy["window_days"])
    last = plan.windows.filter(state=MonitoringWindow.State.CLOSED).order_by("-end").first()
    latest = plan.windows.filter(rows__gt=0).order_by("-end").first()
    open_alerts = Finding.objects.filter(plan=plan, state__in=Finding.OPEN_STATES).count()
    since = latest.end if latest else version.origin
    out = {"plan_id": plan.pk, "open_findings": open_alerts,
           "last_window": None if last is None else {"start": iso_utc(last.start), "end": iso_utc(last.end),
                                                     "verdict": last.verdict, "ledger_seq": last.ledger_seq}}
    if now - since > length:
        return {**out, "status": f"no data since {iso_utc(since)}"}
    status = last.verdict if last else "inconclusive"
    if open_alerts and VERDICTS.index(status) < VERDICTS.index("alert"):
        status = "alert"
    return {**out, "status": status}


def monitoring_health(model_version_id: int, environment: str):
    """The release-status fact: the monitoring health of the version (None outside production)."""
    if environment != "production":
        return None
    plan = MonitoringPlan.objects.unrestricted().filter(model_version_id=model_version_id).first()
    if plan is None:
        return {"status": "no plan"}
    return plan_health(plan)


ATTENTION_DAYS = 5


def attention(user) -> dict | None:
    """Open findings and incidents not yet reported (nearest deadline first) that USER may read."""
    findings = list(findings_for(user).filter(state__in=Finding.OPEN_STATES).order_by("-created_at")[:10])
    incidents = list(incidents_for(user).filter(reported_at__isnull=True).order_by("deadline")[:10])
    if not findings and not incidents:
        return None
    now = timezone.now()
    return {
        "findings": findings,
        "incidents": [{"incident": i, "overdue": i.deadline < now,
                       "near": i.deadline - now < timedelta(days=ATTENTION_DAYS)} for i in incidents],
    }
