"""Admin pages of the release gates: policies (editing publishes a new version through the
service), assignments, and gate runs with their checks and SVG charts."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from config.errors import DomainError, refusal_text

from ..charts.badges import verdict_badge
from ..charts.gates import GROUP_METRICS as GROUP_FIGURES
from ..charts.gates import gate_run_charts
from ..gates.policy import HIGH_RISK_DEFAULT, VERDICT_LABELS
from ..models import GatePolicy, GatePolicyAssignment, GateRun, ReleaseRequest
from ..selectors.gates import gate_policy_assignments, gate_runs_for
from ..selectors.registry import models_for
from ..services.gates import gate_policy_assign, gate_policy_publish, gate_run_reverify_request
from .base import LedgerHistory, ServiceWritesAdmin


def _pretty(value):
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


class PolicyDocumentField(forms.JSONField):
    """A JSON document shown indented, one key a line: a policy in one line of a few thousand
    characters could not be read or edited in the textarea."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


class GatePolicyForm(forms.ModelForm):
    document = PolicyDocumentField(
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "style": "font-family:monospace"}),
        help_text="A custos.gate-policy/1 document. Saving publishes it as the next version of this name.",
    )

    class Meta:
        model = GatePolicy
        fields = ["name", "document"]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.published = None

    def clean(self):
        """Publish through the service (its checks are the only ones); its refusals become form errors."""
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.published = gate_policy_publish(name=cleaned["name"], document=cleaned["document"], actor=self.actor)
        except ValidationError as exc:
            self.add_error(None if not hasattr(exc, "error_dict") else None, exc)
        except (DomainError, PermissionDenied) as exc:
            self.add_error(None, refusal_text(exc))
        return cleaned

    def validate_unique(self):
        pass  # the service numbers the new version


@admin.register(GatePolicy)
class GatePolicyAdmin(LedgerHistory, ServiceWritesAdmin):
    list_display = ["name", "version", "short_digest", "created_by", "created_at"]
    list_filter = ["name"]
    search_fields = ["name", "digest"]
    form = GatePolicyForm

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "document"]
        return ["name", "version", "digest", "created_by", "created_at", "document_pretty", "edit_link"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def get_changeform_initial_data(self, request):
        source = GatePolicy.objects.filter(pk=request.GET.get("from") or 0).first()
        if source is not None:
            return {"name": source.name, "document": source.document}
        return {"document": HIGH_RISK_DEFAULT}

    @admin.display(description="digest")
    def short_digest(self, obj):
        return obj.digest[:16]

    @admin.display(description="document")
    def document_pretty(self, obj):
        return _pretty(obj.document)

    @admin.display(description="edit")
    def edit_link(self, obj):
        url = reverse("admin:governance_gatepolicy_add") + f"?from={obj.pk}"
        return format_html('<a class="button" href="{}">Edit as a new version</a>', url)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class PublishingForm(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, actor=request.user, **kw)

        return PublishingForm

    def save_model(self, request, obj, form, change):
        # The form's clean() published it through the service; the admin only records where it went.
        obj.pk = form.published.pk
        obj.version = form.published.version

    def has_change_permission(self, request, obj=None):
        return False  # published versions are immutable; "Edit as a new version" publishes another

    def has_delete_permission(self, request, obj=None):
        return False


class GatePolicyAssignmentForm(forms.ModelForm):
    class Meta:
        model = GatePolicyAssignment
        fields = ["policy_name", "risk_tier", "model"]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.assigned = None

    def clean(self):
        """Assign through the service (its checks are the only ones); its refusals become form errors."""
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.assigned = gate_policy_assign(policy_name=cleaned.get("policy_name", ""),
                                               risk_tier=cleaned.get("risk_tier", ""), model=cleaned.get("model"),
                                               actor=self.actor)
        except ValidationError as exc:
            self.add_error(None, exc)
        except (DomainError, PermissionDenied) as exc:
            self.add_error(None, refusal_text(exc))
        return cleaned

    def validate_unique(self):
        pass  # the service replaces the tier's or model's assignment


@admin.register(GatePolicyAssignment)
class GatePolicyAssignmentAdmin(LedgerHistory, ServiceWritesAdmin):
    list_display = ["__str__", "policy_name", "risk_tier", "model", "assigned_by", "assigned_at"]
    form = GatePolicyAssignmentForm

    def get_queryset(self, request):
        return gate_policy_assignments(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "model":
            kwargs["queryset"] = models_for(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        return obj is None and self.has_add_permission(request)  # an assignment is replaced, not edited

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return ["policy_name", "risk_tier", "model"] if obj else []

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class AssigningForm(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, actor=request.user, **kw)

        return AssigningForm

    def save_model(self, request, obj, form, change):
        obj.pk = form.assigned.pk  # assigned through the service by the form's clean()


def _number(value):
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value else f"{value:.3f}"
    return str(value)


def _limit(limit):
    if not isinstance(limit, dict) or not limit:
        return "—"
    words = {"min": "at least", "max": "at most", "max_drop": "drops at most", "max_abs": "|x| at most"}
    return "; ".join(f"{words.get(k, k)} {_number(v)}" for k, v in limit.items())


def _table(headers, rows, *, table_id=""):
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    cells = (format_html_join("", "<td>{}</td>", ((c,) for c in row)) for row in rows)
    body = format_html_join("", "<tr>{}</tr>", ((c,) for c in cells))
    return format_html('<table id="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', table_id, head, body)


def check_counts(checks) -> dict:
    """How many checks ended in each verdict; a check that could not run is *not applicable*, not passed."""
    counts = {}
    for c in checks:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    return counts


@admin.register(GateRun)
class GateRunAdmin(LedgerHistory, admin.ModelAdmin):
    list_display = ["__str__", "dataset_version", "policy", "status", "verdict_shown", "checks_summary",
                    "created_at", "finished_at"]
    list_filter = ["status", "policy__name"]
    list_select_related = ["model_version__model", "dataset_version__dataset", "policy"]
    search_fields = ["model_version__model__name", "model_version__version", "result_digest"]
    actions = ["reverify"]
    fields = [
        "model_version", "dataset_version", "policy", "label_column", "positive_label", "seed", "baseline",
        "status", "verdict_shown", "checks_summary", "reason_text", "checks_table", "charts", "performance_table",
        "fairness_tables", "explainability_table", "libraries_table", "releases_links", "reverifications_table",
        "result_digest", "result_download", "ledger_link", "submitted_by", "created_at", "started_at", "finished_at",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return gate_runs_for(request.user)

    def has_add_permission(self, request):
        return False  # runs are submitted through the API (they need a label and a snapshot)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("<int:pk>/result.json", wrap(self.result_view), name="governance_gaterun_result"),
                *super().get_urls()]

    def result_view(self, request, pk):
        """The full stored result (per-row SHAP values included) as a JSON file."""
        run = get_object_or_404(self.get_queryset(request), pk=pk)
        if not run.result:
            raise Http404("This run has no result.")
        response = HttpResponse(json.dumps(run.result, indent=2, sort_keys=True), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="gate-run-{run.pk}-result.json"'
        return response

    @admin.display(description="verdict")
    def verdict_shown(self, obj):
        verdict = (obj.result or {}).get("verdict") or (obj.status if obj.status in GateRun.FINAL else "")
        return mark_safe(verdict_badge(verdict))  # noqa: S308  charts.badges escapes every text

    @admin.display(description="checks")
    def checks_summary(self, obj):
        counts = check_counts((obj.result or {}).get("checks", []))
        if not counts:
            return "—"
        order = ["passed", "failed", "inconclusive", "error", "not_applicable"]
        return ", ".join(f"{counts[v]} {VERDICT_LABELS.get(v, v).split(':')[0].lower()}"
                         for v in sorted(counts, key=lambda v: order.index(v) if v in order else 99))

    @admin.display(description="reason")
    def reason_text(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", obj.reason or "—")

    @admin.display(description="checks")
    def checks_table(self, obj):
        checks = (obj.result or {}).get("checks", [])
        if not checks:
            return "—"
        return _table(["area", "check", "verdict", "value", "limit", "why"], [
            (c["area"], c["name"], mark_safe(verdict_badge(c["verdict"])),  # noqa: S308  escaped by charts.badges
             _number(c.get("value")), _limit(c.get("limit")), c.get("reason", ""))
            for c in checks
        ], table_id="checks")

    @admin.display(description="charts")
    def charts(self, obj):
        svgs = [svg for _, svg in gate_run_charts(obj.result)]
        if not svgs:
            return "—"
        # The SVGs are generated by governance.charts.gates, which escapes every text it draws.
        return mark_safe("".join(f"<div style='margin:6px 0'>{svg}</div>" for svg in svgs))  # noqa: S308

    @admin.display(description="performance")
    def performance_table(self, obj):
        perf = (obj.result or {}).get("performance") or {}
        if not perf:
            return "—"
        return _table(["metric", "value"], [(k, _number(v)) for k, v in perf.items()], table_id="performance")

    @admin.display(description="fairness")
    def fairness_tables(self, obj):
        features = ((obj.result or {}).get("fairness") or {}).get("features") or []
        if not features:
            return "—"
        parts = []
        for f in features:
            metrics = [(name, _number(m.get("value")),
                        " – ".join(_number(x) for x in m["ci"]) if m.get("ci") else "—")
                       for name, m in (f.get("metrics") or {}).items()]
            groups = [(g.get("group"), g.get("count"), *(_number(g.get(k)) for k in GROUP_FIGURES))
                      for g in f.get("groups", [])]
            parts.append(format_html(
                "<h4>By {}</h4>{}{}", f.get("name"),
                _table(["metric", "value", "95% interval"], metrics),
                _table(["group", "rows", *(k.replace("_", " ") for k in GROUP_FIGURES)], groups),
            ))
        return format_html_join("", "{}", ((p,) for p in parts))

    @admin.display(description="explanations (SHAP)")
    def explainability_table(self, obj):
        ex = (obj.result or {}).get("explainability") or {}
        if not ex:
            return "—"
        facts = _table(["explainer", "rows explained", "model output", "additivity error", "exact"], [(
            ex.get("shap_class") or ex.get("explainer"), ex.get("explained_count"), ex.get("model_output"),
            _number(ex.get("additivity_error")), "yes" if ex.get("exact") else "no")])
        importance, shares = ex.get("importance") or {}, ex.get("shares") or {}
        rows = [(i + 1, name, _number(importance.get(name)), f"{100 * shares[name]:.1f}%" if name in shares else "—")
                for i, name in enumerate(sorted(importance, key=importance.get, reverse=True))]
        return format_html("{}{}", facts, _table(["rank", "feature", "mean |SHAP|", "share"], rows,
                                                  table_id="shap-importance"))

    @admin.display(description="libraries")
    def libraries_table(self, obj):
        libs = (obj.result or {}).get("libraries") or {}
        return _table(["library", "version"], sorted((k, v or "—") for k, v in libs.items())) if libs else "—"

    @admin.display(description="releases decided by this run")
    def releases_links(self, obj):
        # A release of a run is of the run's model, in its unit: whoever reads the run reads them.
        releases = ReleaseRequest.objects.unrestricted().filter(gate_run=obj).order_by("pk")
        if not releases:
            return "—"
        return format_html_join(", ", '<a href="{}">release #{} → {}</a>', (
            (reverse("admin:governance_releaserequest_review", args=[r.pk]), r.pk, r.environment) for r in releases))

    @admin.display(description="full result")
    def result_download(self, obj):
        if not obj.result:
            return "—"
        url = reverse("admin:governance_gaterun_result", args=[obj.pk])
        return format_html('<a class="button" href="{}" id="result-download">Download the full result (JSON)</a> '
                           "<small>every figure, per-row SHAP values included</small>", url)

    @admin.display(description="ledger")
    def ledger_link(self, obj):
        url = reverse("admin:audit_ledgerentry_changelist") + "?" + urlencode({"subject": obj.ledger_subject})
        return format_html('<a href="{}">Every ledger entry about this run</a>', url)

    @admin.display(description="re-verifications")
    def reverifications_table(self, obj):
        checks = obj.reverifications.select_related("requested_by")
        if not checks:
            return "— (select the run in the list and choose “Re-verify”)"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td><b>{}</b></td><td>{}</td></tr>",
            ((c.requested_at.strftime("%Y-%m-%dT%H:%M:%SZ"), c.requested_by or "system", c.get_status_display(),
              "; ".join(c.differences[:5]) or "—") for c in checks),
        )
        return format_html("<table><tr><th>requested</th><th>by</th><th>outcome</th><th>differences</th></tr>{}</table>",
                           rows)

    @admin.action(description="Re-verify selected runs (recompute and compare, on a worker)", permissions=["view"])
    def reverify(self, request, queryset):
        for run in queryset.order_by("pk"):
            try:
                gate_run_reverify_request(run=run, actor=request.user)
            except (DomainError, PermissionDenied, ValidationError) as exc:  # e.g. a run in error has no result
                self.message_user(request, f"Run {run.pk}: {refusal_text(exc)}", level=messages.WARNING)
                continue
            self.message_user(request, f"Run {run.pk}: re-verification queued; its result appears on the run's page.")
