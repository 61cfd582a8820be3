"""Read the registry, restricted to the business units the user may see.

Every selector takes the asking user; the system reads with the models' ``unrestricted()``.
"""

from ..models import (
    CodeVersion,
    Dataset,
    DatasetVersion,
    MLModel,
    ModelVersion,
    OpenLineageEvent,
    SubjectIndexEntry,
    TrainingRun,
)
from ..storage.subjects import subject_key


def datasets_for(user):
    return Dataset.objects.select_related("business_unit").for_user(user)


def dataset_versions_for(user):
    return DatasetVersion.objects.select_related("dataset", "dataset__business_unit").for_user(user)


def code_versions_for(user):
    return CodeVersion.objects.select_related("business_unit").for_user(user)


def models_for(user):
    return MLModel.objects.select_related("business_unit", "owner").for_user(user)


def model_versions_for(user):
    return ModelVersion.objects.select_related("model", "model__business_unit").for_user(user)


def training_runs_for(user):
    qs = TrainingRun.objects.select_related("business_unit", "code_version", "model_version").prefetch_related(
        "inputs__dataset_version__dataset"
    )
    return qs.for_user(user)


def openlineage_events_for(user):
    return OpenLineageEvent.objects.select_related("business_unit").for_user(user)


def subject_holdings(*, subject_id: str, user) -> dict:
    """Where one data subject is: the dataset versions that hold them (with row counts), the
    training runs that read those versions, and the model versions those runs produced.

    One index lookup by keyed hash; no snapshot is opened. Restricted to USER's units.
    """
    key = subject_key(subject_id)
    entries = (
        SubjectIndexEntry.objects.filter(subject_key=key, dataset_version__in=dataset_versions_for(user))
        .select_related("dataset_version", "dataset_version__dataset")
        .order_by("dataset_version_id")
    )
    versions = [(e.dataset_version, e.row_count) for e in entries]
    runs = list(
        training_runs_for(user)
        .filter(inputs__dataset_version__in=[dv for dv, _ in versions])
        .distinct()
        .order_by("pk")
    )
    model_versions = list(model_versions_for(user).filter(training_run__in=runs).order_by("pk"))
    return {
        "subject_key": key,
        "dataset_versions": versions,
        "training_runs": runs,
        "model_versions": model_versions,
    }
