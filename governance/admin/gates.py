"""Admin pages of the release gates: policies (editing publishes a new version through the
service), assignments, and gate runs with their checks and SVG charts."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from ..gates import PolicyError, policy_parse
from ..charts.gates import fairness_charts, importance_chart
from ..gates.policy import HIGH_RISK_DEFAULT
from ..models import GatePolicy, GatePolicyAssignment, GateRun
from ..selectors.gates import gate_policy_assignments, gate_runs_for
from ..selectors.registry import models_for
from ..services.gates import gate_policy_assign, gate_policy_publish, gate_run_reverify


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

    def clean_document(self):
        document = self.cleaned_data["document"]
        try:
            policy_parse(document)
        except PolicyError as exc:
            raise ValidationError(exc.messages) from None
        return document

    def clean(self):
        cleaned = super().clean()
        name, document = cleaned.get("name"), cleaned.get("document")
        latest = GatePolicy.objects.filter(name=name).order_by("-version").first() if name else None
        if latest is not None and document is not None and policy_parse(document) == latest.document:
            raise ValidationError(f"The document is identical to {latest}; nothing to publish.")
        return cleaned

    def validate_unique(self):
        pass  # the service numbers the new version


@admin.register(GatePolicy)
class GatePolicyAdmin(admin.ModelAdmin):
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

    def save_model(self, request, obj, form, change):
        published = gate_policy_publish(name=form.cleaned_data["name"], document=form.cleaned_data["document"],
                                        actor=request.user)
        obj.pk = published.pk
        obj.version = published.version

    def has_change_permission(self, request, obj=None):
        return False  # published versions are immutable; "Edit as a new version" publishes another

    def has_delete_permission(self, request, obj=None):
        return False


class GatePolicyAssignmentForm(forms.ModelForm):
    class Meta:
        model = GatePolicyAssignment
        fields = ["policy_name", "risk_tier", "model"]

    def clean_policy_name(self):
        name = self.cleaned_data["policy_name"]
        if not GatePolicy.objects.filter(name=name).exists():
            raise ValidationError(f"No gate policy is named {name!r}.")
        return name

    def validate_unique(self):
        pass  # the service replaces the tier's or model's assignment


@admin.register(GatePolicyAssignment)
class GatePolicyAssignmentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "policy_name", "risk_tier", "model", "assigned_by", "assigned_at"]
    form = GatePolicyAssignmentForm

    def get_queryset(self, request):
        return gate_policy_assignments(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "model":
            kwargs["queryset"] = models_for(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return request.user.has_perm("governance.add_gatepolicy")

    def has_change_permission(self, request, obj=None):
        return obj is None and self.has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return ["policy_name", "risk_tier", "model"] if obj else []

    def save_model(self, request, obj, form, change):
        try:
            assignment = gate_policy_assign(policy_name=obj.policy_name, risk_tier=obj.risk_tier, model=obj.model,
                                            actor=request.user)
        except ValidationError as exc:
            raise PermissionDenied(" ".join(exc.messages)) from None
        obj.pk = assignment.pk


@admin.register(GateRun)
class GateRunAdmin(admin.ModelAdmin):
    list_display = ["id", "model_version", "dataset_version", "policy", "status", "created_at", "finished_at"]
    list_filter = ["status", "policy__name"]
    search_fields = ["model_version__model__name", "model_version__version", "result_digest"]
    actions = ["reverify"]
    fields = [
        "model_version", "dataset_version", "policy", "label_column", "positive_label", "seed", "baseline",
        "status", "reason_text", "checks_table", "charts", "result_digest", "submitted_by", "created_at",
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
        if not obj.result:
            return "—"
        svgs = []
        importance = importance_chart(obj.result)
        if importance:
            svgs.append(importance)
        svgs.extend(svg for _, svg in fairness_charts(obj.result))
        # The SVGs are generated by governance.gates.charts, which escapes every text it draws.
        return mark_safe("".join(f"<div style='margin:6px 0'>{svg}</div>" for svg in svgs))  # noqa: S308

    @admin.display(description="full result")
    def result_pretty(self, obj):
        return _pretty(obj.result) if obj.result else "—"

    @admin.action(description="Re-verify selected runs (recompute and compare)", permissions=["view"])
    def reverify(self, request, queryset):
        for run in queryset.order_by("pk"):
            try:
                found = gate_run_reverify(run=run, actor=request.user)
            except (PermissionDenied, ValidationError) as exc:  # e.g. a run in error has no result
                self.message_user(request, f"Run {run.pk}: {' '.join(getattr(exc, 'messages', [str(exc)]))}",
                                  level=messages.WARNING)
                continue
            if found:
                self.message_user(request, f"Run {run.pk} does NOT reproduce: {'; '.join(found[:5])}",
                                  level=messages.ERROR)
            else:
                self.message_user(request, f"Run {run.pk} reproduces.")
