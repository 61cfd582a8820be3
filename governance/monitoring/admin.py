"""Monitoring in the admin: plans with their windows (tables and charts over time), each window's
statistics, findings with their triage, incidents with their Art. 73 deadline and report.

Pages read through monitoring's selectors (the user's business units); every write is a
service of ``governance.monitoring.services``. Nothing is added, edited or deleted by hand.
"""

from datetime import UTC

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from config.errors import DomainError, refusal_text
from governance.charts.monitoring import time_chart, verdict_heatmap
from governance.rules.limits import JUSTIFICATION_MIN_LENGTH

from .models import Finding, Incident, MonitoringPlan, MonitoringWindow
from .policy import INCIDENT_CATEGORIES
from .selectors import findings_for, incidents_for, plan_health, plans_for, windows_of
from .services import (
    finding_dismiss, incident_open, incident_report, plan_version_current, plan_version_publish, revocation_execute,
    revocation_request,
)

DRIFT = ("psi", "js_distance", "wasserstein_normalised", "chi_square")
AREAS = {
    "drift": lambda f: f["statistic"] in DRIFT,
    "integrity": lambda f: f["statistic"] in ("missing_rate", "type_violations", "range_violations", "unseen_share"),
    "performance": lambda f: f["statistic"] in ("accuracy", "true_positive_rate", "false_positive_rate", "precision"),
    "fairness": lambda f: f["statistic"] == "demographic_parity_ratio",
}


def _label(window) -> str:
    return window.start.astimezone(UTC).strftime("%m-%d")


def _figures(window, statistic, column=None):
    for f in (window.evaluation or {}).get("statistics", []):
        if f["statistic"] == statistic and (column is None or f["column"] == column):
            return f
    return None


def plan_charts(plan, windows) -> dict:
    """The plan's pictures over its closed windows: drift per feature, performance, fairness, heatmap."""
    closed = [w for w in windows if w.evaluation]
    spec = (plan.reference or {}).get("spec") or {}
    columns = list(spec.get("numeric", [])) + list(spec.get("categorical", [])) + [spec.get("score")]
    drift, heat = [], []
    for column in [c for c in columns if c]:
        points, verdicts = [], []
        for w in closed:
            f = _figures(w, "psi", column)
            points.append((_label(w), f and f["value"], None, f and f["verdict"]))
            verdicts.append(_worst([g["verdict"] for g in w.evaluation["statistics"]
                                    if g["column"] == column and g["statistic"] in DRIFT]))
        limits = (closed[0].evaluation["limits"] if closed else {})
        drift.append(time_chart(f"PSI of {column} by window", points, warn=limits.get("psi_warn"),
                                alert=limits.get("psi_alert")))
        heat.append((column, verdicts))
    performance = []
    for statistic in ("accuracy", "true_positive_rate", "false_positive_rate"):
        points = []
        for w in closed:
            f = _figures(w, statistic)
            points.append((_label(w), f and f["value"], f and f.get("interval"), f and f["verdict"]))
        f0 = next((_figures(w, statistic) for w in closed if _figures(w, statistic)), None)
        lim = (f0 or {}).get("limits") or {}
        performance.append(time_chart(f"{statistic.replace('_', ' ')} (labelled rows)", points,
                                      warn=lim.get("warn"), alert=lim.get("alert")))
    fairness = []
    attributes = [g["column"] for g in spec.get("groups", [])]
    for attribute in attributes:
        points = []
        for w in closed:
            f = _figures(w, "demographic_parity_ratio", attribute)
            points.append((_label(w), f and f["value"], f and f.get("interval"), f and f["verdict"]))
        fairness.append(time_chart(f"demographic parity ratio by {attribute} (95% band)", points, warn=0.8, alert=0.8))
    heatmap = verdict_heatmap("Drift verdicts: columns × windows", heat, [_label(w) for w in closed]) if closed else ""
    return {"drift": drift, "performance": performance, "fairness": fairness, "heatmap": heatmap}


class PlanVersionForm(forms.Form):
    """A new plan version: the window, the label delay and the limits (the rest is kept)."""

    window_days = forms.IntegerField(min_value=1, max_value=366)
    label_delay_days = forms.IntegerField(min_value=1, max_value=366)
    psi_warn = forms.FloatField(min_value=0)
    psi_alert = forms.FloatField(min_value=0)
    js_warn = forms.FloatField(min_value=0)
    js_alert = forms.FloatField(min_value=0)
    wasserstein_warn = forms.FloatField(min_value=0)
    wasserstein_alert = forms.FloatField(min_value=0)
    min_rows = forms.IntegerField(min_value=1)
    min_labelled = forms.IntegerField(min_value=1)
    min_group = forms.IntegerField(min_value=1)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 80}))

    LIMITS = ("psi_warn", "psi_alert", "js_warn", "js_alert", "wasserstein_warn", "wasserstein_alert", "min_rows",
              "min_labelled", "min_group")

    @classmethod
    def initial_of(cls, policy) -> dict:
        return {"window_days": policy["window_days"], "label_delay_days": policy["label_delay_days"],
                "notes": policy.get("notes", ""), **{k: policy["limits"][k] for k in cls.LIMITS}}

    def changes(self, policy) -> dict:
        d = self.cleaned_data
        out = {}
        for key in ("window_days", "label_delay_days", "notes"):
            if d[key] != policy.get(key, ""):
                out[key] = d[key]
        limits = {k: d[k] for k in self.LIMITS if d[k] != policy["limits"][k]}
        if limits:
            out["limits"] = limits
        return out


def _worst(verdicts):
    order = ("ok", "inconclusive", "warn", "alert")
    known = [v for v in verdicts if v in order]
    return max(known, key=order.index) if known else None


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MonitoringPlan)
class MonitoringPlanAdmin(ReadOnly):
    list_display = ["id", "model_version", "status", "reference_origin", "health", "created_at"]
    list_filter = ["status"]
    list_select_related = ["model_version__model"]

    def get_queryset(self, request):
        return plans_for(request.user)

    @admin.display(description="health")
    def health(self, obj):
        return plan_health(obj)["status"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        plan = plans_for(request.user).filter(pk=object_id).first()
        if plan is None or not self.has_view_permission(request, plan):
            raise PermissionDenied
        windows = list(windows_of(plan))
        reference = plan.reference or {}
        version = plan_version_current(plan)
        may_edit = request.user.has_perm("monitoring.change_monitoringplan") and MonitoringPlan.objects.for_user(
            request.user, write=True).filter(pk=plan.pk).exists()
        form = PlanVersionForm(initial=PlanVersionForm.initial_of(version.policy)) if may_edit else None
        if request.method == "POST":
            if not may_edit:
                raise PermissionDenied
            form = PlanVersionForm(request.POST)
            if form.is_valid():
                changes = form.changes(version.policy)
                if not changes:
                    messages.info(request, "Nothing changed: no new version.")
                else:
                    try:
                        new = plan_version_publish(plan=plan, changes=changes, actor=request.user)
                    except (DomainError, ValidationError, PermissionDenied) as exc:
                        messages.error(request, refusal_text(exc))
                    else:
                        messages.success(request, f"Plan version {new.version} published (digest {new.digest[:16]}…).")
                        return redirect("admin:monitoring_monitoringplan_change", plan.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Monitoring plan of {plan.model_version}",
            "plan": plan,
            "health": plan_health(plan),
            "version": version,
            "form": form,
            "versions": plan.versions.order_by("-version"),
            "reference_numeric": [(k, v["n"], v["missing"], v["min"], v["max"], v["mean"])
                                  for k, v in (reference.get("numeric") or {}).items()],
            "reference_categorical": [(k, v["n"], v["missing"], len(v["categories"]))
                                      for k, v in (reference.get("categorical") or {}).items()],
            "windows": windows,
            "findings": plan.findings.select_related("window").order_by("-created_at")[:50],
            "charts": plan_charts(plan, windows),
        }
        return TemplateResponse(request, "admin/monitoring/plan.html", context)


@admin.register(MonitoringWindow)
class MonitoringWindowAdmin(ReadOnly):
    list_display = ["id", "plan", "start", "end", "state", "rows", "labelled", "verdict", "ledger_seq"]
    list_filter = ["state", "verdict"]

    def get_queryset(self, request):
        return MonitoringWindow.objects.for_user(request.user).select_related("plan__model_version__model")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        window = self.get_queryset(request).filter(pk=object_id).first()
        if window is None or not self.has_view_permission(request, window):
            raise PermissionDenied
        figures = (window.evaluation or {}).get("statistics", [])
        areas = {name: [f for f in figures if test(f)] for name, test in AREAS.items()}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Window {window.start:%Y-%m-%d} – {window.end:%Y-%m-%d} of {window.plan.model_version}",
            "window": window,
            "areas": areas,
            "sources": (window.evaluation or {}).get("sources", {}),
        }
        return TemplateResponse(request, "admin/monitoring/window.html", context)


class JustificationForm(forms.Form):
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
                                    min_length=JUSTIFICATION_MIN_LENGTH)


class IncidentForm(forms.Form):
    category = forms.ChoiceField(choices=list(INCIDENT_CATEGORIES.items()))
    aware_at = forms.DateTimeField(help_text="ISO 8601 UTC, e.g. 2024-03-01T09:30:00Z: when you became aware.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
                                  min_length=JUSTIFICATION_MIN_LENGTH)


@admin.register(Finding)
class FindingAdmin(ReadOnly):
    list_display = ["id", "plan", "window", "statistic", "column", "verdict", "value", "state", "created_at"]
    list_filter = ["state", "statistic"]

    def get_queryset(self, request):
        return findings_for(request.user)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        finding = self.get_queryset(request).filter(pk=object_id).first()
        if finding is None or not self.has_view_permission(request, finding):
            raise PermissionDenied
        user = request.user
        forms_ = {"dismiss": JustificationForm(prefix="dismiss"), "incident": IncidentForm(prefix="incident"),
                  "request": JustificationForm(prefix="request"), "revoke": JustificationForm(prefix="revoke")}
        action = request.POST.get("action") if request.method == "POST" else None
        if action in forms_:
            form = forms_[action] = type(forms_[action])(request.POST, prefix=action)
            if action == "revoke" and form.is_valid() and request.POST.get("confirmed") != "yes":
                # Irreversible: a page that says what will happen, and asks once more.
                return TemplateResponse(request, "admin/monitoring/revoke_confirm.html", {
                    **self.admin_site.each_context(request), "opts": self.model._meta,
                    "title": f"Revoke release #{finding.plan.release_id}?", "finding": finding,
                    "justification": form.cleaned_data["justification"],
                })
            if form.is_valid():
                d = form.cleaned_data
                try:
                    if action == "dismiss":
                        finding_dismiss(finding=finding, justification=d["justification"], actor=user)
                    elif action == "incident":
                        incident_open(finding=finding, category=d["category"], aware_at=d["aware_at"],
                                      description=d["description"], actor=user)
                    elif action == "request":
                        revocation_request(finding=finding, justification=d["justification"], actor=user)
                    else:
                        revocation_execute(finding=finding, justification=d["justification"], actor=user)
                except (DomainError, ValidationError, PermissionDenied) as exc:
                    messages.error(request, refusal_text(exc))
                else:
                    messages.success(request, f"Finding {finding.pk}: {action} recorded.")
                    return redirect("admin:monitoring_finding_change", finding.pk)
        state = finding.state
        offered = {
            "dismiss": state == Finding.State.OPEN and user.has_perm("monitoring.change_finding"),
            "incident": state == Finding.State.OPEN and user.has_perm("monitoring.add_incident"),
            "request": state in (Finding.State.OPEN, Finding.State.INCIDENT) and user.has_perm("monitoring.change_finding"),
            "revoke": state == Finding.State.REVOCATION_REQUESTED and user.has_perm("monitoring.revoke_finding"),
        }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Finding {finding.pk}: {finding.statistic} {finding.column}",
            "finding": finding,
            "forms": {k: v for k, v in forms_.items() if offered[k]},
            "incident": Incident.objects.filter(finding=finding).first(),
        }
        return TemplateResponse(request, "admin/monitoring/finding.html", context)


class ReportForm(forms.Form):
    reported_at = forms.DateTimeField(help_text="ISO 8601 UTC: when it was reported to the authority.")
    reference = forms.CharField(max_length=200, help_text="The authority's reference.")


@admin.register(Incident)
class IncidentAdmin(ReadOnly):
    list_display = ["id", "plan", "category", "aware_at", "deadline", "reported_at"]
    list_filter = ["category"]

    def get_queryset(self, request):
        return incidents_for(request.user)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        incident = self.get_queryset(request).filter(pk=object_id).first()
        if incident is None or not self.has_view_permission(request, incident):
            raise PermissionDenied
        form = ReportForm()
        if request.method == "POST":
            form = ReportForm(request.POST)
            if form.is_valid():
                try:
                    incident_report(incident=incident, reported_at=form.cleaned_data["reported_at"],
                                    reference=form.cleaned_data["reference"], actor=request.user)
                except (DomainError, ValidationError, PermissionDenied) as exc:
                    messages.error(request, refusal_text(exc))
                else:
                    messages.success(request, f"Incident {incident.pk}: report recorded.")
                    return redirect("admin:monitoring_incident_change", incident.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Incident {incident.pk}",
            "incident": incident,
            "form": form if incident.reported_at is None and request.user.has_perm("monitoring.change_incident") else None,
        }
        return TemplateResponse(request, "admin/monitoring/incident.html", context)

