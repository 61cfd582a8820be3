"""Read gate policies and gate runs; runs are restricted to the units the user may see.

``user=None`` means the system itself, which sees every unit.
"""

from django.db.models import Q

from ..models import GatePolicy, GatePolicyAssignment, GateRun
from .access import business_units_for, restrict_to_units


def gate_runs_for(user):
    qs = GateRun.objects.select_related(
        "model_version", "model_version__model", "model_version__model__business_unit",
        "dataset_version", "dataset_version__dataset", "policy", "submitted_by",
    )
    return qs if user is None else restrict_to_units(qs, user, field="model_version__model__business_unit")


def gate_policies():
    """Every published policy version (policies are institution-wide, not per unit)."""
    return GatePolicy.objects.select_related("created_by")


def gate_policy_assignments(user=None):
    """Risk-tier assignments (institution-wide) and the per-model overrides of the units USER
    may see: an override names its model, which another unit's officer must not learn."""
    qs = GatePolicyAssignment.objects.select_related("model", "model__business_unit")
    if user is None:
        return qs
    return qs.filter(Q(model__isnull=True) | Q(model__business_unit__in=business_units_for(user)))
