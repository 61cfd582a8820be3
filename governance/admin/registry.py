"""Registry admin pages: read-only views of datasets, snapshots, code, models and runs, each
restricted to the user's business units; the model version and dataset version pages draw
their lineage. The only writes offered (new dataset, new model) go through the services."""

from django.contrib import admin
from django.urls import reverse
from django.utils.safestring import mark_safe

from ..models import CodeVersion, Dataset, DatasetVersion, MLModel, ModelVersion, OpenLineageEvent, TrainingRun
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
from .base import ServiceWritesAdmin
from .links import object_links


# A plain related-field filter lists every business unit, naming units the user may not see;
# this one lists only the units of the rows the (restricted) queryset holds.
UNIT_FILTER = admin.RelatedOnlyFieldListFilter


class ReadOnlyAdmin(ServiceWritesAdmin):
    """Show everything, change nothing: registered facts are immutable evidence."""

    selector = None

    def get_queryset(self, request):
        return type(self).selector(request.user)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [f.name for f in self.model._meta.fields if f.name != "wrapped_key"] + list(self.extra_readonly)

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
                "lineage_svg": mark_safe(graph_svg(lineage.downstream(obj, user=request.user))),  # noqa: S308  every label is escaped by graph_svg
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
    selector = staticmethod(model_versions_for)
    change_form_template = "admin/governance/lineage_change_form.html"
    list_display = ["__str__", "framework", "artifact_format", "short_sha256", "created_at"]
    list_filter = ["framework", "artifact_format", ("model__business_unit", UNIT_FILTER)]
    search_fields = ["model__name", "version", "artifact_sha256"]

    @admin.display(description="Artifact SHA-256")
    def short_sha256(self, obj):
        return obj.artifact_sha256[:16]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context = {
                **(extra_context or {}),
                "lineage_title": "Lineage: where this model came from",
                "lineage_svg": mark_safe(graph_svg(lineage.upstream(obj, user=request.user))),  # noqa: S308  every label is escaped by graph_svg
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
