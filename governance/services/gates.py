"""Release gates: publish and assign gate policies; submit, start, finish and re-verify gate runs.

Each write appends its ledger entry in the same transaction. A gate run's summary (verdicts,
values, digests) is ledgered; the full result is stored on the run. What follows a finished run
(the releases waiting on it move on) is ``services.gating``, which sits above this module and
``services.releases``: this module knows nothing of releases' transitions.

The engine (``governance.gates.evaluate``: numpy, pandas, scikit-learn, shap, fairlearn) is
imported only where a run is computed, on a worker.
"""

import hashlib
import logging
import secrets
import traceback

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.canonical import canonical_json
from audit.services import ledger_append
from config.tasks import enqueue_on_commit

from ..gates import PolicyError, input_problems, policy_parse, sensitive_specs
from ..gates.policy import HIGH_RISK_DEFAULT
from ..gates.results import differences, summary
from ..models import (
    DatasetVersion,
    ErasureSnapshot,
    GatePolicy,
    GatePolicyAssignment,
    GateRun,
    GateRunReverification,
    MLModel,
    ModelVersion,
    RiskTier,
    SnapshotKey,
    TrainingRunInput,
)
from ..rules.kinds import GovernanceKind
from ..selectors.gates import gate_policy_for_model, gate_run_baseline
from ..selectors.snapshots import snapshot_frame
from ..storage import artifacts
from .guards import recorded_user, require

logger = logging.getLogger(__name__)


def unexpected_failure(exc: Exception) -> str:
    """The reason recorded for an unexpected failure: its kind only. A library's message may
    quote a cell of the snapshot, so it goes neither into the run (which the API serves) nor
    into the log, which has where it happened (the frames) instead."""
    logger.error("gate run failed: %s\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return f"{type(exc).__name__} (an unexpected failure; the operators' log has where)"


SEED_LIMIT = 2**31
DEFAULT_POLICY_NAME = "high-risk-default"
EXECUTE_TASK = "governance.gate_run_execute"
REVERIFY_TASK = "governance.gate_run_reverify"

# Publishing a policy version or choosing a risk tier's policy changes every unit's gates: it
# takes organisation-wide authority (the Head of Model Risk). A unit's own people may choose the
# policy of one of their unit's models (an override).
PUBLISH_PERM = "governance.add_gatepolicy"
OVERRIDE_PERM = "governance.add_gatepolicyassignment"


# --- policies --------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def gate_policy_publish(*, name: str, document: dict, actor=None) -> GatePolicy:
    """Publish DOCUMENT as the next version of policy NAME; ledger its digest.

    Publishing a document identical to the latest version is refused: nothing changed."""
    return _gate_policy_publish(name=name, document=document, actor=actor)


@transaction.atomic(savepoint=False)
def _gate_policy_publish(*, name, document, actor):
    require(actor, PUBLISH_PERM, what="publish gate policies (organisation-wide authority)")
    try:
        normalised = policy_parse(document)
    except PolicyError as exc:
        raise ValidationError({"document": exc.messages}) from None
    digest = hashlib.sha256(canonical_json(normalised)).hexdigest()
    latest = GatePolicy.objects.select_for_update().filter(name=name).order_by("-version").first()
    if latest is not None and latest.digest == digest:
        raise ValidationError({"document": f"The document is identical to {latest}; nothing to publish."})
    policy = GatePolicy(
        name=name,
        version=(latest.version + 1) if latest else 1,
        document=normalised,
        digest=digest,
        created_by=recorded_user(actor),
    )
    policy.full_clean()
    policy.save()
    ledger_append(
        kind=GovernanceKind.POLICY_PUBLISHED,
        subject=policy.ledger_subject,
        payload={"name": name, "version": policy.version, "digest": digest,
                 "previous_digest": latest.digest if latest else None},
        actor=actor,
    )
    return policy


@transaction.atomic(durable=True)
def gate_policy_assign(*, policy_name: str, risk_tier: str = "", model: MLModel | None = None,
                       actor=None) -> GatePolicyAssignment:
    """Make policy POLICY_NAME (its latest version) apply to RISK_TIER, or to MODEL (an override)."""
    return _gate_policy_assign(policy_name=policy_name, risk_tier=risk_tier, model=model, actor=actor)


@transaction.atomic(savepoint=False)
def _gate_policy_assign(*, policy_name, risk_tier, model, actor):
    if bool(risk_tier) == (model is not None):
        raise ValidationError("Assign a policy either to a risk tier or to one model.")
    if model is None:
        require(actor, PUBLISH_PERM, what="choose a risk tier's gate policy (organisation-wide authority)")
    else:
        require(actor, OVERRIDE_PERM, model.business_unit, what="choose this model's gate policy")
    if not GatePolicy.objects.filter(name=policy_name).exists():
        raise ValidationError({"policy_name": f"No gate policy is named {policy_name!r}."})
    if model is not None:
        assignment = GatePolicyAssignment.objects.filter(model=model).first() or GatePolicyAssignment(model=model)
    else:
        assignment = (GatePolicyAssignment.objects.filter(risk_tier=risk_tier, model__isnull=True).first()
                      or GatePolicyAssignment(risk_tier=risk_tier))
    before = assignment.policy_name or None
    assignment.policy_name = policy_name
    assignment.assigned_by = recorded_user(actor)
    assignment.full_clean(validate_unique=False)
    assignment.save()
    ledger_append(
        kind=GovernanceKind.POLICY_ASSIGNED,
        subject=assignment.ledger_subject,
        payload={"policy_name": policy_name, "previous_policy_name": before, "risk_tier": risk_tier or None,
                 "model_id": model.pk if model else None},
        actor=actor,
    )
    return assignment


@transaction.atomic(durable=True)
def gate_policy_install_defaults(*, out=lambda line: None, actor=None) -> GatePolicy:
    """Publish the shipped high-risk default (unless published) and assign it to the high risk
    tier (unless the tier has a policy). Idempotent."""
    policy = GatePolicy.objects.filter(name=DEFAULT_POLICY_NAME).order_by("-version").first()
    if policy is None:
        policy = _gate_policy_publish(name=DEFAULT_POLICY_NAME, document=HIGH_RISK_DEFAULT, actor=actor)
        out(f"  published gate policy {policy} ({policy.digest[:16]})")
    if not GatePolicyAssignment.objects.filter(risk_tier=RiskTier.HIGH, model__isnull=True).exists():
        _gate_policy_assign(policy_name=DEFAULT_POLICY_NAME, risk_tier=RiskTier.HIGH, model=None, actor=actor)
        out(f"  assigned {DEFAULT_POLICY_NAME} to the high risk tier")
    return policy


# --- runs ------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def gate_run_submit(*, model_version: ModelVersion, dataset_version: DatasetVersion, label_column: str,
                    positive_label, policy: GatePolicy | None = None, seed: int | None = None,
                    actor=None) -> GateRun:
    """Queue a gate run; refuse input that is known to be bad now. A worker runs it after commit."""
    return _gate_run_submit(model_version=model_version, dataset_version=dataset_version,
                            label_column=label_column, positive_label=positive_label, policy=policy, seed=seed,
                            actor=actor)


@transaction.atomic(savepoint=False)
def _gate_run_submit(*, model_version, dataset_version, label_column, positive_label, policy=None, seed=None,
                     actor=None) -> GateRun:
    require(actor, "governance.add_gaterun", model_version.model.business_unit, what="submit gate runs")
    require(actor, "governance.view_datasetversion", dataset_version.dataset.business_unit,
            what="use this dataset version", reading=True)
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
        raise ValidationError({"seed": f"A seed is between 0 and {SEED_LIMIT - 1}."})
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
        subject_column=dataset_version.subject_column,
        personal_columns=dataset_version.personal_columns or [],
        expected_types=_trained_types(model_version),
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
        baseline=gate_run_baseline(model_version, policy),
        submitted_by=recorded_user(actor),
    )
    ledger_append(
        kind=GovernanceKind.RUN_SUBMITTED,
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
    enqueue_on_commit(EXECUTE_TASK, run.pk)
    return run


@transaction.atomic(durable=True)
def gate_run_start(*, run: GateRun) -> GateRun:
    """Mark a queued run as running (a worker took it)."""
    run = GateRun.objects.select_for_update().get(pk=run.pk)
    if run.status != GateRun.Status.QUEUED:
        raise ValidationError(f"Gate run {run.pk} is {run.status}, not queued.")
    run.status = GateRun.Status.RUNNING
    run.started_at = timezone.now()
    run.save(update_fields=["status", "started_at"])
    ledger_append(kind=GovernanceKind.RUN_STARTED, subject=run.ledger_subject, payload={"status": run.status}, actor=None)
    return run


@transaction.atomic(savepoint=False)
def gate_run_finish(*, run: GateRun, result: dict | None, reason: str = "") -> GateRun:
    """Record the outcome of RUN: its result (verdict → status) or, with no result, an error.

    Composed by ``services.gating`` with what follows from it, in one transaction.
    """
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
    ledger_append(kind=GovernanceKind.RUN_FINISHED, subject=run.ledger_subject, payload=payload, actor=None, sealed=True)
    return run


def _trained_types(model_version) -> dict:
    """{column: type} of the snapshots the model version was trained on (where registered)."""
    types = {}
    trained = DatasetVersion.objects.filter(run_inputs__run__model_version=model_version,
                                            run_inputs__role=TrainingRunInput.Role.TRAIN).distinct()
    for schema in trained.values_list("schema", flat=True):
        for column in schema or []:
            types.setdefault(column["name"], column.get("type"))
    return types


def gate_run_compute(run: GateRun) -> dict:
    """Evaluate RUN's model on its dataset version under its policy (no writes)."""
    from ..gates.evaluate import evaluate  # the engine: a worker's import, not Django's at start

    model = artifacts.load_model(run.model_version)
    frame = snapshot_frame(run.dataset_version)
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
        subject_column=run.dataset_version.subject_column,
        personal_columns=run.dataset_version.personal_columns or [],
    )


def _label_value(frame, column, text):
    """The label as the data holds it: '1' is the integer 1 in an integer column."""
    if column in frame.columns:
        for value in frame[column].dropna().unique()[:1000]:
            if str(value) == text:
                return value.item() if hasattr(value, "item") else value
    return text


# --- re-verification (on a worker) ---------------------------------------------------------------


@transaction.atomic(durable=True)
def gate_run_reverify_request(*, run: GateRun, actor=None, dispatch: bool = True) -> GateRunReverification:
    """Queue a re-computation of RUN to check that it reproduces; a worker does it after commit.

    DISPATCH False leaves it to the caller (``manage.py gates reverify`` computes it in place).
    """
    require(actor, "governance.reverify_gaterun", run.model_version.model.business_unit,
            what="re-verify this gate run", reading=True)
    if run.result is None:
        raise ValidationError(f"Gate run {run.pk} has no result to re-verify ({run.status}).")
    check = GateRunReverification.objects.create(run=run, requested_by=recorded_user(actor))
    ledger_append(
        kind=GovernanceKind.RUN_REVERIFY_REQUESTED,
        subject=run.ledger_subject,
        payload={"reverification_id": check.pk, "result_digest": run.result_digest},
        actor=actor,
    )
    if dispatch:
        enqueue_on_commit(REVERIFY_TASK, check.pk)
    return check


def gate_run_reverify(*, reverification_id: int) -> GateRunReverification:
    """Recompute the run of a queued re-verification, compare with its stored result, ledger the outcome."""
    check = GateRunReverification.objects.select_related("run").get(pk=reverification_id)
    if check.status != GateRunReverification.Status.QUEUED:
        return check  # done already (a task delivered twice)
    run = check.run
    # Committed: its per-row figures were redacted with it; destroyed: its original is unreadable.
    redacted = ErasureSnapshot.objects.filter(
        Q(successor_committed=True) | Q(predecessor_key_destroyed=True), predecessor_id=run.dataset_version_id,
    ).select_related("request").first()
    if redacted is not None:
        reference = redacted.request.reference
        scrubbed = any(r.get("request") == reference for r in (run.result or {}).get("redactions", []))
        found = [
            f"Snapshot {run.dataset_version_id} was redacted under erasure request {reference} "
            f"(successor: dataset version {redacted.successor_id}); its original is not to be read again, so the "
            "run cannot be re-computed. " + (
                f"Its stored per-row figures were redacted by erasure {reference} (the person's rows removed); "
                "every aggregate figure and every ledger entry is unchanged." if scrubbed
                else "Its stored result and ledger entries are unchanged.")
        ]
    else:
        try:
            found = differences(run.result, gate_run_compute(run))
        except Exception as exc:  # a re-run that fails is a finding, not a crash
            found = [f"the re-run failed: {unexpected_failure(exc)}"]
    with transaction.atomic(durable=True):
        check = GateRunReverification.objects.select_for_update().get(pk=check.pk)
        if check.status != GateRunReverification.Status.QUEUED:
            return check
        check.status = (
            GateRunReverification.Status.REDACTED if redacted is not None
            else GateRunReverification.Status.DIFFERS if found else GateRunReverification.Status.REPRODUCED
        )
        check.differences = found
        check.finished_at = timezone.now()
        check.save(update_fields=["status", "differences", "finished_at"])
        ledger_append(
            kind=GovernanceKind.RUN_REVERIFIED,
            subject=run.ledger_subject,
            payload={"reverification_id": check.pk, "reproduced": not found, "differences": len(found),
                     "result_digest": run.result_digest,
                     "redacted_by": redacted.request.reference if redacted is not None else None},
            actor=None,
        )
    return check
