"""Read gate policies and gate runs; runs are restricted to the units the user may see."""

from ..models import GatePolicy, GatePolicyAssignment, GateRun
from ..rules.releases import State


def gate_runs_for(user):
    qs = GateRun.objects.select_related(
        "model_version", "model_version__model", "model_version__model__business_unit",
        "dataset_version", "dataset_version__dataset", "policy", "submitted_by",
    )
    return qs.for_user(user)


def gate_policies():
    """Every published policy version (policies are institution-wide, not per unit)."""
    return GatePolicy.objects.select_related("created_by")


def gate_policy_assignments(user):
    """Risk-tier assignments (institution-wide) and the per-model overrides of the units USER
    may see: an override names its model, which another unit's officer must not learn."""
    return GatePolicyAssignment.objects.select_related("model", "model__business_unit").for_user(user)


def gate_policy_for_model(model) -> GatePolicy | None:
    """The latest version of the policy assigned to MODEL (its override, else its risk tier)."""
    assignment = (GatePolicyAssignment.objects.filter(model=model).first()
                  or GatePolicyAssignment.objects.filter(risk_tier=model.risk_tier, model__isnull=True).first())
    if assignment is None:
        return None
    return GatePolicy.objects.filter(name=assignment.policy_name).order_by("-version").first()


def gate_run_baseline(model_version, policy) -> GateRun | None:
    """The run a new version of a model is compared with (no-regression, ranking stability), or None.

    Only a run under the same POLICY version compares like with like (another version may check
    other metrics or limits). Among those: the run behind the latest release of an earlier
    version of the model that was approved (and may since have been superseded; not one
    revoked), i.e. the model in use as it was judged; when none was approved, the latest passed
    run of an earlier version. None means a comparison is not applicable, never that it passed.
    """
    earlier = {"model_version__model": model_version.model, "model_version__created_at__lt": model_version.created_at,
               "policy": policy, "result__isnull": False}
    approved = (
        GateRun.objects.filter(**earlier, release_requests__state__in=[State.APPROVED, State.SUPERSEDED])
        .exclude(model_version=model_version)
        .order_by("-release_requests__decided_at", "-pk")
        .first()
    )
    if approved is not None:
        return approved
    return (
        GateRun.objects.filter(**earlier, status=GateRun.Status.PASSED)
        .exclude(model_version=model_version)
        .order_by("-model_version__created_at", "-finished_at")
        .first()
    )
