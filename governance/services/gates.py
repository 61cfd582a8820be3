"""Release gates: publish and assign gate policies; submit, execute and re-verify gate runs.

Each write appends its ledger entry in the same transaction. A gate run's summary (verdicts,
values, digests) is ledgered; the full result is stored on the run.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.canonical import canonical_json
from audit.services import ledger_append

from ..selectors.snapshots import snapshot_frame
from ..storage import SnapshotUnreadable, artifacts
from ..gates import GateInputError, PolicyError, differences, evaluate, input_problems, policy_parse, summary
from ..gates.evaluate import sensitive_specs
from ..gates.policy import HIGH_RISK_DEFAULT
from ..models import (
    DatasetVersion,
    GatePolicy,
    GatePolicyAssignment,
    GateRun,
    MLModel,
    ModelVersion,
    ReleaseRequest,
    RiskTier,
    SnapshotKey,
    TrainingRunInput,
)
from ..rules.releases import State
from ..selectors.access import can_access_unit
from .registry import require_unit_permission

SEED_LIMIT = 2**31
DEFAULT_POLICY_NAME = "high-risk-default"


def _require_perm(actor, perm):
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDenied("You may not change gate policies.")


def _user(actor):
    return actor if actor is not None and not isinstance(actor, str) else None


# --- policies --------------------------------------------------------------------------------


@transaction.atomic
def gate_policy_publish(*, name: str, document: dict, actor=None) -> GatePolicy:
    """Publish DOCUMENT as the next version of policy NAME; ledger its digest.

    Publishing a document identical to the latest version is refused: nothing changed."""
    _require_perm(actor, "governance.add_gatepolicy")
    try:
        normalised = policy_parse(document)
    except PolicyError as exc:
        raise ValidationError(exc.messages) from None
    digest = hashlib.sha256(canonical_json(normalised)).hexdigest()
    latest = GatePolicy.objects.select_for_update().filter(name=name).order_by("-version").first()
    if latest is not None and latest.digest == digest:
        raise ValidationError(f"The document is identical to {latest}; nothing to publish.")
    policy = GatePolicy(
        name=name,
        version=(latest.version + 1) if latest else 1,
        document=normalised,
        digest=digest,
        created_by=_user(actor),
    )
    policy.full_clean()
    policy.save()
    ledger_append(
        kind="gates.policy_published",
        subject=policy.ledger_subject,
        payload={"name": name, "version": policy.version, "digest": digest,
                 "previous_digest": latest.digest if latest else None},
        actor=actor,
    )
    return policy


@transaction.atomic
def gate_policy_assign(*, policy_name: str, risk_tier: str = "", model: MLModel | None = None,
                       actor=None) -> GatePolicyAssignment:
    """Make policy POLICY_NAME (its latest version) apply to RISK_TIER, or to MODEL (an override)."""
    _require_perm(actor, "governance.add_gatepolicy")
    if bool(risk_tier) == (model is not None):
        raise ValidationError("Assign a policy either to a risk tier or to one model.")
    if not GatePolicy.objects.filter(name=policy_name).exists():
        raise ValidationError(f"No gate policy is named {policy_name!r}.")
    if model is not None and actor is not None and not can_access_unit(actor, model.business_unit, write=True):
        raise PermissionDenied("You may not assign a policy to a model of another business unit.")
    if model is not None:
        assignment = GatePolicyAssignment.objects.filter(model=model).first() or GatePolicyAssignment(model=model)
    else:
        assignment = (GatePolicyAssignment.objects.filter(risk_tier=risk_tier, model__isnull=True).first()
                      or GatePolicyAssignment(risk_tier=risk_tier))
    before = assignment.policy_name or None
    assignment.policy_name = policy_name
    assignment.assigned_by = _user(actor)
    assignment.full_clean(validate_unique=False)
    assignment.save()
    ledger_append(
        kind="gates.policy_assigned",
        subject=assignment.ledger_subject,
        payload={"policy_name": policy_name, "previous_policy_name": before, "risk_tier": risk_tier or None,
                 "model_id": model.pk if model else None},
        actor=actor,
    )
    return assignment


def gate_policy_install_defaults(*, out=lambda line: None, actor=None) -> GatePolicy:
    """Publish the shipped high-risk default (unless published) and assign it to the high risk
    tier (unless the tier has a policy). Idempotent."""
    policy = GatePolicy.objects.filter(name=DEFAULT_POLICY_NAME).order_by("-version").first()
    if policy is None:
        policy = gate_policy_publish(name=DEFAULT_POLICY_NAME, document=HIGH_RISK_DEFAULT, actor=actor)
        out(f"  published gate policy {policy} ({policy.digest[:16]})")
    if not GatePolicyAssignment.objects.filter(risk_tier=RiskTier.HIGH, model__isnull=True).exists():
        gate_policy_assign(policy_name=DEFAULT_POLICY_NAME, risk_tier=RiskTier.HIGH, actor=actor)
        out(f"  assigned {DEFAULT_POLICY_NAME} to the high risk tier")
    return policy


def gate_policy_for_model(model: MLModel) -> GatePolicy | None:
    """The latest version of the policy assigned to MODEL (its override, else its risk tier)."""
    assignment = (GatePolicyAssignment.objects.filter(model=model).first()
                  or GatePolicyAssignment.objects.filter(risk_tier=model.risk_tier, model__isnull=True).first())
    if assignment is None:
        return None
    return GatePolicy.objects.filter(name=assignment.policy_name).order_by("-version").first()


# --- runs ------------------------------------------------------------------------------------


def gate_run_baseline(model_version: ModelVersion) -> GateRun | None:
    """The run a new version is compared with (no-regression, ranking stability).

    The gate run behind the latest release of an earlier version of the same model that was
    approved (and may since have been superseded; not one revoked): the model in use, as it was
    judged. When no earlier version was ever approved, the latest passed run of an earlier version.
    """
    earlier = {"model": model_version.model, "model_version__created_at__lt": model_version.created_at}
    approved = (
        ReleaseRequest.objects.filter(**earlier, state__in=[State.APPROVED, State.SUPERSEDED])
        .exclude(model_version=model_version)
        .exclude(gate_run_subject="")
        .order_by("-decided_at", "-pk")
        .values_list("gate_run_subject", flat=True)
        .first()
    )
    if approved:
        label, _, pk = approved.partition(":")
        run = GateRun.objects.filter(pk=pk, result__isnull=False).first() if label == "governance.gaterun" else None
        if run is not None:
            return run
    return (
        GateRun.objects.filter(
            model_version__model=model_version.model,
            model_version__created_at__lt=model_version.created_at,
            status=GateRun.Status.PASSED,
        )
        .exclude(model_version=model_version)
        .order_by("-model_version__created_at", "-finished_at")
        .first()
    )


@transaction.atomic
def gate_run_submit(*, model_version: ModelVersion, dataset_version: DatasetVersion, label_column: str,
                    positive_label, policy: GatePolicy | None = None, seed: int | None = None,
                    actor=None) -> GateRun:
    """Queue a gate run; refuse input that is known to be bad now. The run executes after commit."""
    unit = model_version.model.business_unit
    require_unit_permission(actor, "governance.add_gaterun", unit)
    if actor is not None and not can_access_unit(actor, dataset_version.dataset.business_unit):
        raise PermissionDenied("You may not use this dataset version.")
    if dataset_version.storage != DatasetVersion.Storage.STORED:
        raise ValidationError("Gate runs evaluate snapshots stored by Custos; this dataset version is only referenced.")
    if not SnapshotKey.objects.filter(dataset_version=dataset_version, wrapped_key__isnull=False).exists():
        raise ValidationError("The data key of this dataset version has been destroyed: its snapshot cannot be read.")
    if TrainingRunInput.objects.filter(run__model_version=model_version, dataset_version=dataset_version,
                                       role=TrainingRunInput.Role.TRAIN).exists():
        raise ValidationError("This dataset version trained the model version: a gate evaluates on data the model "
                              "has not seen (a holdout or test snapshot).")
    if policy is None:
        policy = gate_policy_for_model(model_version.model)
        if policy is None:
            raise ValidationError(
                f"No gate policy is assigned to model {model_version.model.name!r} or to its risk tier "
                f"{model_version.model.risk_tier!r}; name a policy or assign one."
            )
    if seed is None:
        seed = secrets.randbelow(SEED_LIMIT)
    if not 0 <= seed < SEED_LIMIT:
        raise ValidationError(f"A seed is between 0 and {SEED_LIMIT - 1}.")
    columns = [c["name"] for c in dataset_version.schema or []]
    specs = sensitive_specs(policy.document, dataset_version.sensitive_columns or [])
    problems = input_problems(
        features=model_version.feature_names or None,
        columns=columns,
        label_column=label_column,
        sensitive_columns=[s["column"] for s in specs],
        intersections=policy.document["fairness"]["intersections"],
        binned_columns=[s["column"] for s in specs if s.get("cut_points")],
        column_types={c["name"]: c.get("type") for c in dataset_version.schema or []},
    ) if columns else []
    if problems:
        raise ValidationError(problems)
    run = GateRun.objects.create(
        model_version=model_version,
        dataset_version=dataset_version,
        policy=policy,
        label_column=label_column,
        positive_label=str(positive_label),
        seed=seed,
        baseline=gate_run_baseline(model_version),
        submitted_by=_user(actor),
    )
    ledger_append(
        kind="gates.run_submitted",
        subject=run.ledger_subject,
        payload={
            "model_version_id": model_version.pk,
            "artifact_sha256": model_version.artifact_sha256,
            "dataset_version_id": dataset_version.pk,
            "dataset_sha256": dataset_version.sha256,
            "policy_id": policy.pk,
            "policy_digest": policy.digest,
            "label_column": label_column,
            "positive_label": str(positive_label),
            "seed": seed,
            "baseline_run_id": run.baseline_id,
        },
        actor=actor,
    )
    from ..tasks import gate_run_execute_task

    run_id = run.pk
    transaction.on_commit(lambda: gate_run_execute_task.delay(run_id))
    return run


@transaction.atomic
def gate_run_start(*, run: GateRun) -> GateRun:
    run = GateRun.objects.select_for_update().get(pk=run.pk)
    if run.status != GateRun.Status.QUEUED:
        raise ValidationError(f"Gate run {run.pk} is {run.status}, not queued.")
    run.status = GateRun.Status.RUNNING
    run.started_at = timezone.now()
    run.save(update_fields=["status", "started_at"])
    ledger_append(kind="gates.run_started", subject=run.ledger_subject, payload={"status": run.status}, actor=None)
    return run


@transaction.atomic
def gate_run_finish(*, run: GateRun, result: dict | None, reason: str = "") -> GateRun:
    """Record the outcome of RUN: its result (verdict → status) or, with no result, an error."""
    run = GateRun.objects.select_for_update().get(pk=run.pk)
    if run.status in GateRun.FINAL:
        raise ValidationError(f"Gate run {run.pk} has already finished ({run.status}).")
    if result is None:
        run.status = GateRun.Status.ERROR
        run.reason = reason
        # The reason may quote values from the data (a label, a category): the ledger binds it
        # by digest, and the run row, which erasure can reach, keeps the words.
        payload = {
            "status": run.status,
            "verdict": "error",
            "reason_sha256": hashlib.sha256(reason.encode()).hexdigest(),
        }
    else:
        run.status = result["verdict"]
        run.reason = "\n".join(result.get("reasons", []))
        run.result = result
        payload = {"status": run.status, **summary(result)}
        run.result_digest = payload["result_digest"]
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "reason", "result", "result_digest", "finished_at"])
    # Sealed now: releases cite this entry's seq as the gate verdict's evidence.
    ledger_append(kind="gates.run_finished", subject=run.ledger_subject, payload=payload, actor=None, sealed=True)
    from .releases import release_gates_from_run  # releases waiting on this run move on with it

    release_gates_from_run(run=run)
    return run


def _load_inputs(run: GateRun):
    model = artifacts.load_model(run.model_version)
    frame = snapshot_frame(run.dataset_version)
    return model, frame


def gate_run_compute(run: GateRun) -> dict:
    """Evaluate RUN's model on its dataset version under its policy (no writes)."""
    model, frame = _load_inputs(run)
    baseline = run.baseline.result if run.baseline_id else None
    return evaluate(
        model,
        frame,
        label_column=run.label_column,
        positive_label=_label_value(frame, run.label_column, run.positive_label),
        policy=run.policy.document,
        seed=run.seed,
        declared_sensitive=run.dataset_version.sensitive_columns or [],
        previous=baseline,
        model_sha256=run.model_version.artifact_sha256,
        dataset_sha256=run.dataset_version.sha256,
    )


def _label_value(frame, column, text):
    """The label as the data holds it: '1' is the integer 1 in an integer column."""
    if column in frame.columns:
        for value in frame[column].dropna().unique()[:1000]:
            if str(value) == text:
                return value.item() if hasattr(value, "item") else value
    return text


def gate_run_execute(*, run_id: int) -> GateRun:
    """Run a queued gate run to its end. Every failure ends in status error with the reason."""
    run = gate_run_start(run=GateRun.objects.get(pk=run_id))
    try:
        result = gate_run_compute(run)
    except (artifacts.ArtifactRefused, SnapshotUnreadable, GateInputError, PolicyError) as exc:
        return gate_run_finish(run=run, result=None, reason=str(exc))
    except Exception as exc:  # never a crash, never a pass: an error with the reason
        return gate_run_finish(run=run, result=None, reason=f"{type(exc).__name__}: {exc}")
    return gate_run_finish(run=run, result=result)


def gate_runs_abandon_stuck(*, older_than: timedelta | None = None) -> list[GateRun]:
    """End in error the runs that no worker finished: queued or running for longer than OLDER_THAN.

    A worker that crashed, or a task the broker lost, leaves a run queued or running for ever,
    and the releases gating on it with it. Each such run is finished as an error (ledgered, and
    its releases fail their gates, never pass); the model version can then be requested again,
    which starts a new run. OLDER_THAN defaults to CUSTOS_GATE_RUN_TIMEOUT seconds. Celery beat
    calls this every ten minutes; ``manage.py gates abandon-stuck`` does it by hand.
    """
    if older_than is None:
        older_than = timedelta(seconds=settings.CUSTOS_GATE_RUN_TIMEOUT)
    cutoff = timezone.now() - older_than
    stuck = GateRun.objects.filter(
        Q(status=GateRun.Status.QUEUED, created_at__lt=cutoff) | Q(status=GateRun.Status.RUNNING, started_at__lt=cutoff)
    ).order_by("pk")
    minutes = int(older_than.total_seconds() // 60)
    abandoned = []
    for run in stuck:
        reason = (
            f"Abandoned: {run.status} for more than {minutes} minutes and no worker finished it (a worker may "
            "have stopped, or the task was lost). Request the release again to start a new gate run."
        )
        try:
            abandoned.append(gate_run_finish(run=run, result=None, reason=reason))
        except ValidationError:
            continue  # a worker finished it meanwhile
    return abandoned


@transaction.atomic
def gate_run_reverify(*, run: GateRun, actor=None) -> list[str]:
    """Recompute RUN and compare with its stored result; ledger the outcome; return differences."""
    if actor is not None and (not actor.has_perm("governance.reverify_gaterun")
                              or not can_access_unit(actor, run.model_version.model.business_unit)):
        raise PermissionDenied("You may not re-verify this gate run.")
    if run.result is None:
        raise ValidationError(f"Gate run {run.pk} has no result to re-verify ({run.status}).")
    try:
        recomputed = gate_run_compute(run)
    except Exception as exc:
        found = [f"the re-run failed: {type(exc).__name__}: {exc}"]
    else:
        found = differences(run.result, recomputed)
    ledger_append(
        kind="gates.run_reverified",
        subject=run.ledger_subject,
        payload={"reproduced": not found, "differences": len(found), "result_digest": run.result_digest},
        actor=actor,
    )
    return found
