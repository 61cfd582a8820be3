"""Which ledger entries a user may read: those about records of the business units they may see.

The ledger (``audit``) knows nothing of units; it names its subjects by strings such as
``governance.modelversion:42``. This is the read scope it applies through the setting
``CUSTOS_LEDGER_READ_SCOPE`` to its API and its admin browser.
"""

from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Concat

from ..models import (
    BusinessUnit,
    CodeVersion,
    Dataset,
    DatasetVersion,
    GatePolicyAssignment,
    GateRun,
    MLModel,
    ModelVersion,
    OpenLineageEvent,
    ReleaseRequest,
    SnapshotKey,
    TrainingRun,
)
from .access import business_units_for, sees_all_units

# Record types whose entries belong to one business unit, and the path from a record to it.
UNIT_PATHS = {
    BusinessUnit: "pk",
    Dataset: "business_unit",
    DatasetVersion: "dataset__business_unit",
    SnapshotKey: "dataset_version__dataset__business_unit",
    CodeVersion: "business_unit",
    MLModel: "business_unit",
    ModelVersion: "model__business_unit",
    TrainingRun: "business_unit",
    OpenLineageEvent: "business_unit",
    GatePolicyAssignment: "model__business_unit",  # one assigned to a risk tier is shared (below)
    GateRun: "model_version__model__business_unit",
    ReleaseRequest: "model__business_unit",
}
# Subjects every ledger reader may read: the shared policies and the ledger's own keys.
SHARED_PREFIXES = ("governance.gatepolicy:", "governance.approvalpolicy:", "audit.key:")


def scope_entries(queryset, user):
    """Filter QUERYSET (ledger entries) to those USER may read.

    Superusers and global read roles (Auditor) read every entry. Others read the entries about
    records of their units and the shared ones; entries about people (role and status
    changes), service tokens, tier-wide assignments and the storage master key stay with the
    global readers.
    """
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    if user.is_superuser or sees_all_units(user):
        return queryset
    units = business_units_for(user)
    visible = Q(subject__startswith=SHARED_PREFIXES[0])
    for prefix in SHARED_PREFIXES[1:]:
        visible |= Q(subject__startswith=prefix)
    visible |= Q(subject__in=GatePolicyAssignment.objects.filter(model__isnull=True).annotate(
        subject=_subject(GatePolicyAssignment)).values("subject"))
    for model, path in UNIT_PATHS.items():
        records = model.objects.filter(**{f"{path}__in": units})
        visible |= Q(subject__in=records.annotate(subject=_subject(model)).values("subject"))
    return queryset.filter(visible)


def _subject(model):
    """The SQL expression of a record's ledger subject (``GovernedModel.ledger_subject``)."""
    return Concat(Value(f"{model._meta.label_lower}:"), Cast("pk", CharField()), output_field=CharField())
