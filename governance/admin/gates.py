"""Admin pages of the release gates: policies (editing publishes a new version through the
service), assignments, and gate runs with their checks and SVG charts."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from config.errors import DomainError, refusal_text

from ..charts.gates import gate_run_charts
from ..gates.policy import HIGH_RISK_DEFAULT
from ..models import GatePolicy, GatePolicyAssignment, GateRun
from ..selectors.gates import gate_policy_assignments, gate_runs_for
from ..selectors.registry import models_for
from ..services.gates import gate_policy_assign, gate_policy_publish, gate_run_reverify_request
from .base import ServiceWritesAdmin


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
class GatePolicyAdmin(ServiceWritesAdmin):
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
class GatePolicyAssignmentAdmin(ServiceWritesAdmin):
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


@admin.register(GateRun)
class GateRunAdmin(admin.ModelAdmin):
    list_display = ["id", "model_version", "dataset_version", "policy", "status", "created_at", "finished_at"]
    list_filter = ["status", "policy__name"]
    search_fields = ["model_version__model__name", "model_version__version", "result_digest"]
    actions = ["reverify"]
    fields = [
        "model_version", "dataset_version", "policy", "label_column", "positive_label", "seed", "baseline",
        "status", "reason_text", "checks_table", "charts", "reverifications_table", "result_digest", "submitted_by",
        "created_at",
        "started_at", "finished_at", "result_pretty",
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

    @admin.display(description="reason")
    def reason_text(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", obj.reason or "—")

    @admin.display(description="checks")
    def checks_table(self, obj):
        checks = (obj.result or {}).get("checks", [])
        if not checks:
            return "—"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td><b>{}</b></td><td>{}</td></tr>",
            ((c["area"], c["name"], c["verdict"], c["reason"]) for c in checks),
        )
        return format_html("<table><tr><th>area</th><th>check</th><th>verdict</th><th>reason</th></tr>{}</table>",
                           rows)

    @admin.display(description="charts")
    def charts(self, obj):
        svgs = [svg for _, svg in gate_run_charts(obj.result)]
        if not svgs:
            return "—"
        # The SVGs are generated by governance.charts.gates, which escapes every text it draws.
        return mark_safe("".join(f"<div style='margin:6px 0'>{svg}</div>" for svg in svgs))  # noqa: S308

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

    @admin.display(description="full result")
    def result_pretty(self, obj):
        return _pretty(obj.result) if obj.result else "—"

    @admin.action(description="Re-verify selected runs (recompute and compare, on a worker)", permissions=["view"])
    def reverify(self, request, queryset):
        for run in queryset.order_by("pk"):
            try:
                gate_run_reverify_request(run=run, actor=request.user)
            except (DomainError, PermissionDenied, ValidationError) as exc:  # e.g. a run in error has no result
                self.message_user(request, f"Run {run.pk}: {refusal_text(exc)}", level=messages.WARNING)
                continue
            self.message_user(request, f"Run {run.pk}: re-verification queued; its result appears on the run's page.")
