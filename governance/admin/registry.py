"""Registry admin pages: read-only views of datasets, snapshots, code, models and runs, each
restricted to the user's business units; the model version and dataset version pages draw
their lineage. The only writes offered (new dataset, new model) go through the services."""

import json

from django.contrib import admin, messages
from django.db.models import JSONField
from django.http import HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from audit.selectors import evidence_bundle, subjects_about
from audit.services import checkpoint_create

from ..charts.badges import verdict_badge
from ..models import (
    CodeVersion,
    Dataset,
    DatasetVersion,
    GateRun,
    MLModel,
    ModelVersion,
    OpenLineageEvent,
    ReleaseRequest,
    TrainingRun,
)
from ..rules.releases import state_label
from ..charts.lineage import graph_svg
from ..selectors import lineage
from ..selectors.access import business_units_for
from ..selectors.registry import (
    code_versions_for,
    dataset_versions_for,
    datasets_for,
    model_versions_for,
    models_for,
    openlineage_events_for,
    training_runs_for,
)
from ..services.registry import dataset_create, model_create
from .base import LedgerHistory, ServiceWritesAdmin, lineage_href
from .links import object_links


# A plain related-field filter lists every business unit, naming units the user may not see;
# this one lists only the units of the rows the (restricted) queryset holds.
UNIT_FILTER = admin.RelatedOnlyFieldListFilter


def _links(rows, empty="—"):
    """An HTML list of (url, text, extra HTML) as links, one a line."""
    rows = list(rows)
    if not rows:
        return empty
    return format_html("<ul class='related-records'>{}</ul>",
                       format_html_join("", '<li><a href="{}">{}</a> {}</li>', rows))


# The versions, runs and releases of a model are in the model's unit: whoever reads the model
# reads them, so they are listed unrestricted, by the model they belong to.
def releases_of(**where):
    return _links(
        (reverse("admin:governance_releaserequest_review", args=[r.pk]),
         f"Release #{r.pk}: v{r.model_version.version} → {r.environment}",
         format_html("({}, {})", state_label(r.state), mark_safe(verdict_badge(r.gate_verdict))))  # noqa: S308
        for r in ReleaseRequest.objects.unrestricted().filter(**where).select_related("model_version").order_by("-pk")
    )


def gate_runs_of(**where):
    return _links(
        (reverse("admin:governance_gaterun_change", args=[g.pk]), str(g),
         format_html("({}, {})", g.get_status_display(),
                     g.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")))
        for g in GateRun.objects.unrestricted().filter(**where).select_related("model_version__model").order_by("-pk")
    )


def json_table(value):
    """A JSON value as a person reads it: a mapping as a two-column table, a list of mappings as a
    table with a column per key, a list of plain values as a list; nested values stay compact JSON."""

    def cell(v):
        if isinstance(v, float):
            return f"{v:.6g}"
        return v if isinstance(v, (str, int)) or v is None else json.dumps(v, sort_keys=True)

    if isinstance(value, dict):
        if not value:
            return "—"
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((k, cell(v)) for k, v in value.items()))
        return format_html('<table class="json-table">{}</table>', rows)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        keys = list(dict.fromkeys(k for v in value for k in v))
        head = format_html_join("", "<th>{}</th>", ((k,) for k in keys))
        body = format_html_join("", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell(v.get(k, "")),)
                                                                                    for k in keys)),) for v in value))
        return format_html('<table class="json-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)
    if isinstance(value, list):
        return ", ".join(str(cell(v)) for v in value) or "—"
    return cell(value)


class ReadOnlyAdmin(LedgerHistory, ServiceWritesAdmin):
    """Show everything, change nothing: registered facts are immutable evidence. JSON fields
    (a schema, parameters, metrics) are shown as tables."""

    selector = None

    def get_queryset(self, request):
        return type(self).selector(request.user)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        names = []
        for f in self.model._meta.fields:
            if f.name == "wrapped_key":
                continue
            names.append(self._table_of(f.name) if isinstance(f, JSONField) else f.name)
        return names + list(self.extra_readonly)

    def get_fields(self, request, obj=None):
        # A record's page shows exactly its read-only fields (each JSON field once, as a table).
        return super().get_fields(request, obj) if obj is None else self.get_readonly_fields(request, obj)

    def _table_of(self, name):
        """A display callable that draws the JSON field NAME as a table (see json_table)."""

        def shown(obj):
            return json_table(getattr(obj, name))

        shown.short_description = self.model._meta.get_field(name).verbose_name
        shown.__name__ = f"{name}_table"
        return shown

    extra_readonly = ()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    selector = staticmethod(datasets_for)
    list_display = ["name", "business_unit", "created_at"]
    list_filter = [("business_unit", UNIT_FILTER)]
    search_fields = ["name"]
    fields = ["business_unit", "name", "description"]

    def has_add_permission(self, request):
        return request.user.has_perm("governance.add_dataset")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "business_unit":
            kwargs["queryset"] = business_units_for(request.user, write=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else super().get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        created = dataset_create(
            business_unit=obj.business_unit, name=obj.name, description=obj.description, actor=request.user
        )
        obj.pk = created.pk


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ReadOnlyAdmin):
    selector = staticmethod(dataset_versions_for)
    change_form_template = "admin/governance/lineage_change_form.html"
    list_display = ["__str__", "storage", "row_count", "short_sha256", "created_at"]
    list_filter = ["storage", ("dataset__business_unit", UNIT_FILTER)]
    search_fields = ["dataset__name", "version", "sha256"]
    extra_readonly = ("data_key", "indexed_subjects")

    @admin.display(description="SHA-256")
    def short_sha256(self, obj):
        return obj.sha256[:16]

    @admin.display(description="Data key")
    def data_key(self, obj):
        key = getattr(obj, "snapshot_key", None)
        if key is None:
            return "— (not stored by Custos)"
        if key.destroyed_at:
            return f"destroyed {key.destroyed_at:%Y-%m-%d %H:%M} UTC: the snapshot is unreadable"
        return f"live, wrapped by master key {key.master_key_id}"

    @admin.display(description="Subjects in the index")
    def indexed_subjects(self, obj):
        return obj.subject_index.count()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context = {
                **(extra_context or {}),
                "lineage_title": "Downstream lineage",
                "lineage_svg": mark_safe(graph_svg(lineage.downstream(obj, user=request.user), href=lineage_href)),  # noqa: S308  every label is escaped by graph_svg
                "lineage_api": reverse("api:dataset-version-lineage", args=[obj.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(CodeVersion)
class CodeVersionAdmin(ReadOnlyAdmin):
    selector = staticmethod(code_versions_for)
    list_display = ["repository_url", "commit_sha", "image_digest", "business_unit", "created_at"]
    search_fields = ["repository_url", "commit_sha", "image_digest"]


@admin.register(MLModel)
class MLModelAdmin(ReadOnlyAdmin):
    selector = staticmethod(models_for)
    list_display = ["name", "business_unit", "risk_tier", "annex_iii_category", "owner", "created_at"]
    list_filter = ["risk_tier", "annex_iii_category", ("business_unit", UNIT_FILTER)]
    search_fields = ["name"]
    fields = ["business_unit", "name", "intended_purpose", "risk_tier", "annex_iii_category"]
    extra_readonly = ("versions_list", "releases_list", "gate_runs_list")

    @admin.display(description="Versions")
    def versions_list(self, obj):
        return _links(
            (reverse("admin:governance_modelversion_change", args=[v.pk]), f"v{v.version}",
             format_html("<code>{}</code> {}", v.artifact_sha256[:16], v.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")))
            for v in ModelVersion.objects.unrestricted().filter(model=obj).order_by("-pk")
        )

    @admin.display(description="Release requests")
    def releases_list(self, obj):
        return releases_of(model_version__model=obj)

    @admin.display(description="Gate runs")
    def gate_runs_list(self, obj):
        return gate_runs_of(model_version__model=obj)

    def has_add_permission(self, request):
        return request.user.has_perm("governance.add_mlmodel")

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else super().get_fields(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "business_unit":
            kwargs["queryset"] = business_units_for(request.user, write=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        created = model_create(
            business_unit=obj.business_unit,
            name=obj.name,
            intended_purpose=obj.intended_purpose,
            risk_tier=obj.risk_tier,
            annex_iii_category=obj.annex_iii_category,
            actor=request.user,
        )
        obj.pk = created.pk


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    actions = ["export_evidence_bundle"]
    selector = staticmethod(model_versions_for)
    change_form_template = "admin/governance/lineage_change_form.html"
    list_display = ["__str__", "framework", "artifact_format", "short_sha256", "created_at"]
    list_filter = ["framework", "artifact_format", ("model__business_unit", UNIT_FILTER)]
    search_fields = ["model__name", "version", "artifact_sha256"]
    extra_readonly = ("releases_list", "gate_runs_list")

    @admin.display(description="Release requests")
    def releases_list(self, obj):
        return releases_of(model_version=obj)

    @admin.display(description="Gate runs")
    def gate_runs_list(self, obj):
        return gate_runs_of(model_version=obj)

    @admin.display(description="Artifact SHA-256")
    def short_sha256(self, obj):
        return obj.artifact_sha256[:16]

    def has_export_permission(self, request):
        return request.user.has_perm("audit.export_ledgerentry")

    @admin.action(description="Export an evidence bundle of everything about the selected version",
                  permissions=["export"])
    def export_evidence_bundle(self, request, queryset):
        """One JSON file the offline verifier checks: every ledger entry about the version, its model,
        training run, code, datasets, gate runs and releases, with inclusion proofs at a checkpoint
        signed now."""
        versions = list(queryset.order_by("pk"))
        if len(versions) != 1:
            self.message_user(request, "Select one model version to export.", level=messages.WARNING)
            return None
        mv = versions[0]
        checkpoint = checkpoint_create()
        bundle = evidence_bundle(checkpoint=checkpoint, subjects=subjects_about(mv.ledger_subject))
        response = HttpResponse(json.dumps(bundle, indent=1, sort_keys=True), content_type="application/json")
        name = f"evidence-{mv.model.name}-{mv.version}-at-{checkpoint.tree_size}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context = {
                **(extra_context or {}),
                "lineage_title": "Lineage: where this model came from",
                "lineage_svg": mark_safe(graph_svg(lineage.upstream(obj, user=request.user), href=lineage_href)),  # noqa: S308  every label is escaped by graph_svg
                "lineage_api": reverse("api:model-version-lineage", args=[obj.pk]),
                "object_links": object_links(obj, request.user),
            }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    selector = staticmethod(training_runs_for)
    list_display = ["__str__", "business_unit", "source", "state", "model_version", "created_at"]
    list_filter = ["source", "state", ("business_unit", UNIT_FILTER)]
    search_fields = ["name", "external_run_id"]


@admin.register(OpenLineageEvent)
class OpenLineageEventAdmin(ReadOnlyAdmin):
    selector = staticmethod(openlineage_events_for)
    list_display = ["event_kind", "event_type", "job_namespace", "job_name", "openlineage_run_id", "event_time"]
    list_filter = ["event_kind", "event_type"]
    search_fields = ["job_name", "openlineage_run_id"]
