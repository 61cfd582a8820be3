"""Which ledger entries a user may read: those about records of the business units they may see.

The ledger (``audit``) knows nothing of units; it names its subjects by strings such as
``governance.modelversion:42``. This is the read scope it applies through the setting
``CUSTOS_LEDGER_READ_SCOPE`` to its API and its admin browser. It is derived from what every
governed model declares (``GovernedModel.unit_path``, ``institution_wide``), so an app that
adds governed models (monitoring, reports) is covered without a change here.
"""

from django.apps import apps
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Concat

from ..models.access import sees_all_units
from ..models.base import GovernedModel

# Subjects every ledger reader may read besides the institution-wide records: the ledger's keys.
SHARED_PREFIXES = ("audit.key:",)


def governed_models() -> list[type[GovernedModel]]:
    """Every installed model that names itself in the ledger (every app's, not only governance's)."""
    return [m for m in apps.get_models() if issubclass(m, GovernedModel)]


def scope_entries(queryset, user):
    """Filter QUERYSET (ledger entries) to those USER may read.

    Superusers and global read roles (Auditor) read every entry. Others read the entries about
    records of their units, about institution-wide records (gate and approval policies, a risk
    tier's gate policy assignment) and the ledger's keys; entries about people (role and status
    changes), service tokens and the storage master key stay with the global readers.
    """
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    if user.is_superuser or sees_all_units(user):
        return queryset
    visible = Q()
    for prefix in SHARED_PREFIXES:
        visible |= Q(subject__startswith=prefix)
    for model in governed_models():
        if model.institution_wide:
            visible |= Q(subject__startswith=f"{model._meta.label_lower}:")
            continue
        if model.unit_path is None:
            continue  # no unit: global readers only
        records = model.objects.for_user(user)  # the same rule as every other read of these records
        visible |= Q(subject__in=records.annotate(subject=_subject(model)).values("subject"))
    return queryset.filter(visible)


def _subject(model):
    """The SQL expression of a record's ledger subject (``GovernedModel.ledger_subject``)."""
    return Concat(Value(f"{model._meta.label_lower}:"), Cast("pk", CharField()), output_field=CharField())
