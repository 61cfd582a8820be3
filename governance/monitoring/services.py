"""Monitoring's write path: plans, ingestion, labels, window evaluation, findings and incidents.

Every function that changes state appends its ledger entry (``MonitoringKind``) in the same
transaction; entry points are durable, composable steps ``savepoint=False`` and private. The
payloads carry counts, digests and verdicts, never a production value or a prediction id.

- ``plan_on_approval`` (the approval hook governance calls inside the approving transaction)
  makes the plan of a version approved to production: the default policy of its risk tier and
  the reference profile, computed once from the gate run's evaluation snapshot (else the
  training snapshot) scored by the model.
- ``batch_ingest`` streams a batch into its windows' aggregates and keeps no row: only the
  counts and, for the labels to come, a keyed hash per prediction id (``JoinRecord``), purged
  after the label delay. A batch already ingested (same SHA-256) returns the first outcome.
- ``windows_close`` (Celery beat; ``manage.py monitoring evaluate``) closes every window that
  has ended, evaluates it, ledgers its statistics' digest and opens a finding per alert.
- Findings are dismissed, become incidents (Art. 73 deadlines) or ask for the release's
  revocation, which goes through governance's release service.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.services import ledger_append
from config.errors import Conflict
from governance.models import DatasetVersion
from governance.models.registry import TrainingRunInput
from governance.rules.limits import JUSTIFICATION_MIN_LENGTH
from governance.selectors.snapshots import snapshot_frame
from governance.services.guards import recorded_user, require
from governance.services.releases import _release_revoke
from governance.storage import SnapshotUnreadable, artifacts, load_secret_key

from . import policy as plans
from .errors import MonitoringInputError
from .kinds import MonitoringKind
from .models import (
    Finding, Incident, IngestedBatch, JoinRecord, MonitoringPlan, MonitoringPlanVersion, MonitoringWindow,
)
from .vocabulary import iso_utc

if TYPE_CHECKING:
    from .aggregates import ReferenceProfile
    from .ingest import WindowSchedule

logger = logging.getLogger(__name__)

SCORE_COLUMN = "score"
THRESHOLD = 0.5  # binary argmax of predict_proba, as the release gate predicts
PERFORMANCE_FIGURES = ("accuracy", "true_positive_rate", "false_positive_rate", "precision")


class MonitoringConflict(Conflict):
    """The request collides with the plan's or the finding's state (409)."""


def _digest(value) -> str:
    return plans.digest(value)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def role_permissions_add(sender=None, **kwargs):
    """Give the role groups monitoring's model permissions (post_migrate, after governance's sync)."""
    for role, codenames in plans.ROLE_PERMISSIONS.items():
        group = Group.objects.filter(name=role).first()
        if group is not None:
            group.permissions.add(*Permission.objects.filter(content_type__app_label="monitoring",
                                                             codename__in=codenames))


# --- plans ------------------------------------------------------------------------------------


def plan_on_approval(*, release, actor=None) -> MonitoringPlan | None:
    """The approval hook: make the monitoring plan of a version approved to production."""
    if release.environment != "production":
        return None
    existing = MonitoringPlan.objects.filter(model_version=release.model_version).first()
    if existing is not None:
        return existing
    return _plan_create(release=release, actor=actor)


def _reference_sources(release):
    """The snapshots to profile, in order: the gate run's evaluation snapshot, then the model
    version's training snapshot; each (dataset version, origin). The gate run names the label."""
    run = release.gate_run
    if run is None:
        raise MonitoringInputError("the release has no gate run to name the label column")
    sources = []
    if run.dataset_version.storage == DatasetVersion.Storage.STORED:
        sources.append((run.dataset_version, "gate evaluation snapshot"))
    training = TrainingRunInput.objects.filter(
        run__model_version=release.model_version, role="train", dataset_version__storage=DatasetVersion.Storage.STORED
    ).select_related("dataset_version").first()
    if training is not None:
        sources.append((training.dataset_version, "training snapshot"))
    if not sources:
        raise MonitoringInputError("neither a stored gate evaluation snapshot nor a stored training snapshot to profile")
    return run, sources


def reference_compute(*, model_version, dataset_version, label_column: str, positive_label: str,
                      cut_points: dict | None = None) -> ReferenceProfile:
    """Profile DATASET_VERSION scored by MODEL_VERSION (its positive-class score): once, at the plan."""
    from .aggregates import GroupAttribute, ProfileSpec, ReferenceProfile  # heavy (numpy, pyarrow): not at Django's start
    # The gate engine (pandas, scikit-learn) is a worker's import, not Django's at start.
    import pandas as pd

    from governance.gates.evaluate import _positive_index, model_features, predict
    from governance.services.gates import _label_value

    model = artifacts.load_model(model_version)
    frame = snapshot_frame(dataset_version)
    if label_column not in frame.columns:
        raise MonitoringInputError(f"the reference snapshot has no label column {label_column!r}")
    positive = _label_value(frame, label_column, positive_label)
    features = model_features(model) or list(model_version.feature_names or []) or [
        c for c in frame.columns if c not in (label_column, dataset_version.subject_column)]
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise MonitoringInputError(f"the reference snapshot lacks the model's features {', '.join(missing)}")
    _, scores = predict(model, frame[features], _positive_index(model, positive), positive)
    if scores is None:
        raise MonitoringInputError("the model gives no score (predict_proba or decision_function)")
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    categorical = [c for c in features if c not in numeric]
    cuts = cut_points or {}
    groups = []
    for column in dataset_version.sensitive_columns or []:
        if column in frame.columns:
            numeric_group = pd.api.types.is_numeric_dtype(frame[column])
            groups.append(GroupAttribute(column, tuple(cuts.get(column, [25])) if numeric_group else ()))
    table = frame[list(dict.fromkeys(features + [g.column for g in groups] + [label_column]))].copy()
    table[SCORE_COLUMN] = scores
    spec = ProfileSpec(numeric=tuple(numeric), categorical=tuple(categorical), score=SCORE_COLUMN, threshold=THRESHOLD,
                       label=label_column, positive_label=positive, groups=tuple(groups),
                       personal=tuple(c for c in (dataset_version.personal_columns or []) if c in categorical))
    return ReferenceProfile.from_frame(table, spec)


def _gate_figures(run) -> dict:
    perf = ((run.result or {}).get("performance") or {}) if run is not None else {}
    out = {}
    if perf.get("accuracy") is not None:
        out["accuracy"] = perf["accuracy"]
    if perf.get("precision") is not None:
        out["precision"] = perf["precision"]
    if perf.get("recall") is not None:
        out["true_positive_rate"] = perf["recall"]
    return out


def _midnight(moment) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@transaction.atomic(savepoint=False)
def _plan_create(*, release, actor) -> MonitoringPlan:
    model_version = release.model_version
    policy = plans.default_policy(release.model.risk_tier)
    plan = MonitoringPlan(model_version=model_version, release=release)
    run, problems = release.gate_run, []
    try:
        run, sources = _reference_sources(release)
    except MonitoringInputError as exc:
        sources, problems = [], [str(exc)]
    cut_points = ((run.policy.document.get("fairness") or {}).get("cut_points") or {}) if run is not None else {}
    for dataset, origin in sources:
        try:
            profile = reference_compute(model_version=model_version, dataset_version=dataset,
                                        label_column=run.label_column, positive_label=run.positive_label,
                                        cut_points=cut_points)
        except (MonitoringInputError, SnapshotUnreadable, artifacts.ArtifactRefused, ValueError) as exc:
            problems.append(f"{origin} (dataset version {dataset.pk}): {exc}")
            continue
        except Exception as exc:  # a model that cannot score a snapshot must not undo the approval
            problems.append(f"{origin} (dataset version {dataset.pk}): {type(exc).__name__}: {exc}"[:1000])
            continue
        plan.reference, plan.reference_digest = profile.to_json(), profile.digest
        plan.reference_dataset, plan.reference_origin = dataset, origin
        break
    if plan.reference is None:
        # No plan without its reference would hide the gap; the plan says what is missing.
        plan.status = MonitoringPlan.Status.NO_REFERENCE
    plan.reference_problem = "; ".join(problems)
    plan.gate_figures = _gate_figures(run)
    plan.save()
    version = MonitoringPlanVersion.objects.create(
        plan=plan, version=1, policy=policy, digest=_digest(policy), origin=_midnight(timezone.now()),
        created_by=recorded_user(actor),
    )
    ledger_append(
        kind=MonitoringKind.PLAN_CREATED,
        subject=plan.ledger_subject,
        payload={
            "model_version_id": model_version.pk,
            "release_id": release.pk,
            "status": plan.status,
            "reference_digest": plan.reference_digest or None,
            "reference_dataset_version_id": plan.reference_dataset_id,
            "reference_origin": plan.reference_origin,
            "reference_rows": (plan.reference or {}).get("rows"),
            "reference_problem": plan.reference_problem or None,
            "policy_version": 1,
            "policy_digest": version.digest,
            "origin": iso_utc(version.origin),
            "gate_figures": plan.gate_figures,
        },
        actor=actor,
    )
    return plan


def plan_version_current(plan) -> MonitoringPlanVersion:
    return plan.versions.order_by("-version").first()


@transaction.atomic(durable=True)
def plan_version_publish(*, plan: MonitoringPlan, changes: dict, actor) -> MonitoringPlanVersion:
    """Publish a new version of PLAN's policy with CHANGES (window, label delay, limits, origin)."""
    plan = MonitoringPlan.objects.select_for_update().get(pk=plan.pk)
    require(actor, "monitoring.change_monitoringplan", plan.business_unit, what="change monitoring plans")
    current = plan_version_current(plan)
    changes = dict(changes)
    origin = current.origin
    if "origin" in changes:
        try:
            origin = _parse_time(str(changes["origin"]))
        except ValueError:
            raise ValidationError({"origin": "An ISO 8601 time with a zone."}) from None
        if origin.tzinfo is None:
            raise ValidationError({"origin": "An ISO 8601 time with a zone."})
        changes["origin"] = iso_utc(origin)
    windows_exist = plan.windows.exists()
    if windows_exist and ("origin" in changes or "window_days" in changes):
        raise MonitoringConflict("The window origin and length are fixed once a window holds data.")
    try:
        policy = plans.policy_changed(current.policy, changes)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    version = MonitoringPlanVersion.objects.create(
        plan=plan, version=current.version + 1, policy=policy, digest=_digest(policy), origin=origin,
        created_by=recorded_user(actor),
    )
    ledger_append(
        kind=MonitoringKind.PLAN_VERSION_PUBLISHED,
        subject=plan.ledger_subject,
        payload={"version": version.version, "digest": version.digest, "previous_digest": current.digest,
                 "changed": sorted(changes), "origin": iso_utc(origin)},
        actor=actor,
    )
    return version


# --- ingestion --------------------------------------------------------------------------------

_PROFILES: dict[str, ReferenceProfile] = {}


def plan_reference(plan) -> ReferenceProfile:
    """PLAN's reference profile, loaded once per process: a plan's reference never changes, and
    loading one (its RFC 8785 digest over ~200 kB of JSON) cost 160 ms per window evaluated."""
    from .aggregates import ReferenceProfile  # heavy (numpy, pyarrow): not at Django's start
    profile = _PROFILES.get(plan.reference_digest)
    if profile is None:
        profile = ReferenceProfile.from_json(plan.reference)
        if profile.digest != plan.reference_digest:
            raise MonitoringConflict(f"The stored reference of plan {plan.pk} does not match its digest.")
        if len(_PROFILES) >= 32:
            _PROFILES.pop(next(iter(_PROFILES)))
        _PROFILES[plan.reference_digest] = profile
    return profile



def join_key(plan) -> bytes:
    """The plan's key for hashing prediction ids: derived from the index key, never stored."""
    return hmac.new(load_secret_key("CUSTOS_INDEX_KEY"), f"custos.monitoring.join/{plan.pk}".encode(), "sha256").digest()


def _active(plan) -> None:
    if plan.status != MonitoringPlan.Status.ACTIVE or not plan.reference:
        raise MonitoringConflict(f"The plan has no reference profile: {plan.reference_problem or 'not computed'}.")


def plan_schedule(plan, version, now=None) -> WindowSchedule:
    """The windows of PLAN under VERSION; rows are accepted from the end of the last closed window
    up to the end of the window that contains NOW."""
    from .ingest import WindowSchedule  # heavy (numpy, pyarrow): not at Django's start
    now = now or timezone.now()
    length = timedelta(days=version.policy["window_days"])
    last = plan.windows.filter(state=MonitoringWindow.State.CLOSED).order_by("-end").first()
    accept_from = max(version.origin, last.end) if last else version.origin
    current = version.origin + ((now - version.origin) // length) * length
    accept_until = max(current + length, accept_from + length)
    return WindowSchedule(origin=version.origin, length=length, accept_until=accept_until, accept_from=accept_from)


def _window_row(plan, reference, start: str, end: str, cache: dict) -> MonitoringWindow:
    from .aggregates import WindowAggregate  # heavy (numpy, pyarrow): not at Django's start
    window = cache.get(start)
    if window is None:
        empty = WindowAggregate.empty(reference, start, end)
        window, _ = MonitoringWindow.objects.get_or_create(
            plan=plan, start=_parse_time(start),
            defaults={"end": _parse_time(end), "aggregate": empty.to_json(), "aggregate_digest": empty.digest()},
        )
        window = MonitoringWindow.objects.select_for_update().get(pk=window.pk)
        if window.state != MonitoringWindow.State.OPEN:
            raise MonitoringConflict(f"The window starting {start} is closed.")
        cache[start] = window
    return window


def _batch_digest(source) -> str:
    h = hashlib.sha256()
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        with open(source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    position = source.tell()
    for block in iter(lambda: source.read(1 << 20), b""):
        h.update(block)
    source.seek(position)
    return h.hexdigest()


@transaction.atomic(durable=True)
def batch_ingest(*, plan: MonitoringPlan, source, file_format: str, actor, now=None) -> tuple[IngestedBatch, bool]:
    """Fold the batch SOURCE (a path or a seekable binary file) into PLAN's windows.

    Returns (batch record, created); a batch with the same bytes as one already ingested for
    PLAN returns the first record and False (idempotent). Nothing of the rows is kept but
    the windows' counts and one join record (keyed hash) per prediction for its label.
    """
    import pyarrow as pa  # heavy: imported where monitoring computes, never at Django's start
    from .aggregates import WindowAggregate  # heavy (numpy, pyarrow): not at Django's start
    from .ingest import ingest_batch  # heavy (numpy, pyarrow): not at Django's start
    plan = MonitoringPlan.objects.select_for_update().get(pk=plan.pk)
    require(actor, "monitoring.add_ingestedbatch", plan.business_unit, what="send monitoring batches")
    _active(plan)
    digest = _batch_digest(source)
    earlier = IngestedBatch.objects.filter(plan=plan, digest=digest).first()
    if earlier is not None:
        return earlier, False
    version = plan_version_current(plan)
    reference = plan_reference(plan)
    schedule = plan_schedule(plan, version, now)
    cache: dict[str, MonitoringWindow] = {}
    join_count = JoinRecord.objects.filter(plan=plan).count()

    def sink(table: pa.Table) -> None:
        starts = table.column("window").to_pylist()
        length = schedule.length
        rows = []
        for h, start, cell, predicted in zip(table.column("prediction").to_pylist(), starts,
                                             table.column("cell").to_pylist(), table.column("predicted").to_pylist()):
            window = cache.get(start) or _window_row(plan, reference, start, iso_utc(_parse_time(start) + length), cache)
            rows.append(JoinRecord(plan=plan, window=window, prediction_hash=h, cell=cell, predicted=predicted))
        JoinRecord.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)

    try:
        outcome = ingest_batch(
            source, file_format=file_format, reference=reference, schedule=schedule,
            timestamp_column=plan.timestamp_column, prediction_id_column=plan.prediction_id_column,
            key=join_key(plan), join_sink=sink,
        )
    except MonitoringInputError as exc:
        raise ValidationError(str(exc)) from None
    stored = JoinRecord.objects.filter(plan=plan).count() - join_count
    for start, aggregate in outcome.windows.items():
        window = _window_row(plan, reference, start, aggregate.end, cache)
        merged = WindowAggregate.from_json(window.aggregate, reference).merge(aggregate)
        window.aggregate, window.aggregate_digest = merged.to_json(), merged.digest()
        window.rows, window.batches = merged.rows, window.batches + 1
        window.save(update_fields=["aggregate", "aggregate_digest", "rows", "batches"])
    batch = IngestedBatch.objects.create(
        plan=plan, digest=digest, file_format=file_format, rows_read=outcome.rows_read,
        rows_accepted=outcome.rows_accepted, rejected=outcome.rejected, windows=list(outcome.windows),
        ignored_columns=outcome.ignored_columns, join_records=stored,
        duplicate_ids=outcome.join_record_count - stored, created_by=recorded_user(actor),
    )
    _batch_ledger(batch, actor)
    return batch, True


def _batch_ledger(batch, actor):
    ledger_append(
        kind=MonitoringKind.BATCH_INGESTED,
        subject=batch.plan.ledger_subject,
        payload={
            "batch_id": batch.pk, "digest": batch.digest, "source": batch.source, "format": batch.file_format,
            "rows_read": batch.rows_read, "rows_accepted": batch.rows_accepted, "rejected": batch.rejected,
            "windows": batch.windows, "ignored_columns": len(batch.ignored_columns),
            "join_records": batch.join_records, "duplicate_ids": batch.duplicate_ids,
        },
        actor=actor,
    )


@transaction.atomic(durable=True)
def aggregate_ingest(*, plan: MonitoringPlan, document: dict, actor, now=None) -> tuple[IngestedBatch, bool]:
    """Merge a window aggregated at the edge (``custos.monitoring.window/1`` on PLAN's reference)."""
    from .aggregates import WindowAggregate  # heavy (numpy, pyarrow): not at Django's start
    plan = MonitoringPlan.objects.select_for_update().get(pk=plan.pk)
    require(actor, "monitoring.add_ingestedbatch", plan.business_unit, what="send monitoring batches")
    _active(plan)
    reference = plan_reference(plan)
    try:
        aggregate = WindowAggregate.from_json(document, reference)
    except MonitoringInputError as exc:
        raise ValidationError(str(exc)) from None
    if int(aggregate.cells[:, :, 1:].sum()):
        raise ValidationError("cells: labels arrive by prediction id, not in a pre-aggregated window")
    digest = _digest(document)
    earlier = IngestedBatch.objects.filter(plan=plan, digest=digest).first()
    if earlier is not None:
        return earlier, False
    schedule = plan_schedule(plan, plan_version_current(plan), now)
    start = _parse_time(aggregate.start)
    index = (start - schedule.origin) // schedule.length
    if (iso_utc(schedule.origin + index * schedule.length), iso_utc(schedule.origin + (index + 1) * schedule.length)) != (
            aggregate.start, aggregate.end):
        raise ValidationError("start: the bounds of one of the plan's windows")
    if start < schedule.accept_from or start >= schedule.accept_until:
        raise ValidationError("start: a window that is open (not closed, not in the future)")
    window = _window_row(plan, reference, aggregate.start, aggregate.end, {})
    merged = WindowAggregate.from_json(window.aggregate, reference).merge(aggregate)
    window.aggregate, window.aggregate_digest = merged.to_json(), merged.digest()
    window.rows, window.batches = merged.rows, window.batches + 1
    window.save(update_fields=["aggregate", "aggregate_digest", "rows", "batches"])
    batch = IngestedBatch.objects.create(
        plan=plan, digest=digest, source=IngestedBatch.Source.AGGREGATE, rows_read=aggregate.rows,
        rows_accepted=aggregate.rows, rejected={}, windows=[aggregate.start], created_by=recorded_user(actor),
    )
    _batch_ledger(batch, actor)
    return batch, True


@transaction.atomic(durable=True)
def labels_record(*, plan: MonitoringPlan, labels: dict, actor) -> dict:
    """Apply LABELS (prediction id -> label) to the windows of their predictions.

    Returns the counts: applied, unmatched (no join record: unknown, or purged after the label
    delay), already labelled. A label that is not one of the reference's two is refused (400)."""
    import pyarrow as pa  # heavy: imported where monitoring computes, never at Django's start
    from .aggregates import WindowAggregate  # heavy (numpy, pyarrow): not at Django's start
    from .ingest import JOIN_SCHEMA, labels_apply, prediction_key  # heavy (numpy, pyarrow): not at Django's start
    plan = MonitoringPlan.objects.select_for_update().get(pk=plan.pk)
    require(actor, "monitoring.add_ingestedbatch", plan.business_unit, what="send labels")
    _active(plan)
    reference = plan_reference(plan)
    key = join_key(plan)
    try:
        hashed = {prediction_key(pid, key): value for pid, value in labels.items()}
        for value in hashed.values():
            reference.label_code(value)
    except MonitoringInputError as exc:
        raise ValidationError(str(exc)) from None
    records = []
    hashes = list(hashed)
    for i in range(0, len(hashes), 500):
        records += list(JoinRecord.objects.filter(plan=plan, prediction_hash__in=hashes[i:i + 500]).select_related("window"))
    window_ids = sorted({r.window_id for r in records})
    windows = {w.pk: w for w in MonitoringWindow.objects.select_for_update().filter(pk__in=window_ids)}
    by_start = {iso_utc(w.start): w for w in windows.values()}
    table = pa.table({
        "prediction": pa.array([r.prediction_hash for r in records], pa.string()),
        "window": pa.array([iso_utc(windows[r.window_id].start) for r in records], pa.string()),
        "cell": pa.array([r.cell for r in records], pa.int32()),
        "predicted": pa.array([r.predicted for r in records], pa.int8()),
        "label": pa.array([r.label for r in records], pa.int8()),
    }, schema=JOIN_SCHEMA)
    aggregates = {start: WindowAggregate.from_json(w.aggregate, reference) for start, w in by_start.items()}
    try:
        outcome = labels_apply(aggregates, table, hashed)
    except MonitoringInputError as exc:
        raise ValidationError(str(exc)) from None
    new_labels = outcome.join_records.column("label").to_pylist()
    changed = [r for r, new in zip(records, new_labels) if r.label is None and new is not None]
    for r, new in zip(records, new_labels):
        r.label = new
    JoinRecord.objects.bulk_update(changed, ["label"], batch_size=2000)
    for start, count in outcome.by_window.items():
        window, aggregate = by_start[start], outcome.windows[start]
        window.aggregate, window.aggregate_digest = aggregate.to_json(), aggregate.digest()
        window.labelled += count
        window.save(update_fields=["aggregate", "aggregate_digest", "labelled"])
    counts = {"given": len(labels), "applied": outcome.applied, "unmatched": outcome.unmatched,
              "already_labelled": outcome.already_labelled, "by_window": outcome.by_window}
    ledger_append(kind=MonitoringKind.LABELS_RECORDED, subject=plan.ledger_subject, payload=counts, actor=actor)
    return counts


# --- windows ----------------------------------------------------------------------------------


def _evaluations(plan, windows, version) -> list[dict]:
    """The evaluations of WINDOWS (one plan's) under VERSION, computed together (the distances of
    each column for every window at once)."""
    from .aggregates import WindowAggregate  # heavy (numpy, pyarrow): not at Django's start
    from .statistics import windows_evaluate  # heavy (numpy, pyarrow): not at Django's start
    reference = plan_reference(plan)
    policy = version.policy
    return windows_evaluate([WindowAggregate.from_json(w.aggregate, reference) for w in windows], reference,
                            limits=plans.limits_from(policy), gate=plan.gate_figures or None,
                            intersections=tuple(tuple(i) for i in policy.get("intersections", [])),
                            window_digests=[w.aggregate_digest for w in windows])


def _alerts(evaluation):
    return [f for f in evaluation["statistics"] if f["verdict"] == "alert"]


@transaction.atomic(durable=True)
def window_close(*, window: MonitoringWindow, actor=None, evaluation: dict | None = None) -> MonitoringWindow:
    """Close WINDOW (it has ended), evaluate it, ledger its statistics' digest, open its findings.

    A closed window whose labels grew since its evaluation is evaluated again (a new entry).
    EVALUATION, computed beforehand with others (``windows_close``), is used only if it was
    computed from the window's aggregate as it is now, under the current plan version."""
    window = MonitoringWindow.objects.select_for_update().select_related("plan").get(pk=window.pk)
    plan = window.plan
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied("Windows are closed by Custos itself (Celery beat or manage.py monitoring evaluate).")
    reevaluation = window.state == MonitoringWindow.State.CLOSED
    if reevaluation and window.labelled == window.evaluated_labelled:
        return window
    version = plan_version_current(plan)
    if (evaluation is None or evaluation["window"]["digest"] != window.aggregate_digest
            or evaluation["limits"] != asdict(plans.limits_from(version.policy))):
        (evaluation,) = _evaluations(plan, [window], version)
    window.evaluation, window.evaluation_digest = evaluation, _digest(evaluation)
    window.verdict, window.plan_version, window.evaluated_labelled = evaluation["verdict"], version, window.labelled
    window.state = MonitoringWindow.State.CLOSED
    window.closed_at = window.closed_at or timezone.now()
    alerts = _alerts(evaluation)
    entry = ledger_append(
        kind=MonitoringKind.WINDOW_REEVALUATED if reevaluation else MonitoringKind.WINDOW_CLOSED,
        subject=window.ledger_subject,
        payload={
            "plan_id": plan.pk,
            "model_version_id": plan.model_version_id,
            "start": iso_utc(window.start), "end": iso_utc(window.end),
            "rows": window.rows, "labelled": window.labelled, "batches": window.batches,
            "reference_digest": plan.reference_digest,
            "policy_version": version.version, "policy_digest": version.digest,
            "aggregate_digest": window.aggregate_digest,
            "evaluation_digest": window.evaluation_digest,
            "verdict": window.verdict, "verdicts": evaluation["verdicts"],
            "alerts": [[f["statistic"], f["column"]] for f in alerts],
        },
        actor=actor,
        sealed=True,
    )
    window.ledger_seq = entry.seq
    window.save()
    known = set(window.findings.values_list("statistic", "column"))
    for figure in alerts:
        if (figure["statistic"], figure["column"] or "") not in known:
            _finding_open(window=window, figure=figure)
    return window


def _finding_open(*, window, figure) -> Finding:
    finding = Finding.objects.create(
        plan=window.plan, window=window, statistic=figure["statistic"], column=figure["column"] or "",
        verdict=figure["verdict"], value=figure["value"],
        summary={k: figure.get(k) for k in ("value", "limits", "n", "reason", "interval", "null_q95", "role")
                 if k in figure},
    )
    ledger_append(
        kind=MonitoringKind.FINDING_OPENED,
        subject=finding.ledger_subject,
        payload={"window": window.ledger_subject, "statistic": finding.statistic, "column": finding.column,
                 "verdict": finding.verdict, "value": finding.value, "n": figure.get("n")},
        actor=None,
    )
    return finding


def windows_close(*, now=None) -> list[MonitoringWindow]:
    """Close and evaluate every window that has ended (and re-evaluate those with new labels);
    purge the join records past their plan's label delay. Celery beat calls this hourly."""
    now = now or timezone.now()
    done = []
    due = MonitoringWindow.objects.filter(plan__status=MonitoringPlan.Status.ACTIVE, end__lte=now).filter(
        state=MonitoringWindow.State.OPEN).order_by("plan_id", "start")
    relabelled = MonitoringWindow.objects.filter(state=MonitoringWindow.State.CLOSED).exclude(
        labelled=F("evaluated_labelled")).order_by("plan_id", "start")
    by_plan: dict[int, list] = {}
    for window in list(due) + list(relabelled):
        by_plan.setdefault(window.plan_id, []).append(window)
    for windows in by_plan.values():
        plan = MonitoringPlan.objects.get(pk=windows[0].plan_id)
        try:
            evaluations = _evaluations(plan, windows, plan_version_current(plan))
            for window, evaluation in zip(windows, evaluations):
                done.append(window_close(window=window, evaluation=evaluation))
        except Exception:  # one plan's failure must not stop the others' windows; it stays due
            logger.exception("monitoring: closing the windows of plan %s failed", plan.pk)
    join_records_purge(now=now)
    return done


@transaction.atomic(durable=True)
def join_records_purge(*, now=None) -> int:
    """Delete the join records whose window ended more than the plan's label delay ago."""
    now = now or timezone.now()
    purged = 0
    for plan in MonitoringPlan.objects.filter(status=MonitoringPlan.Status.ACTIVE):
        delay = timedelta(days=plan_version_current(plan).policy["label_delay_days"])
        old = JoinRecord.objects.filter(plan=plan, window__end__lte=now - delay)
        count = old.count()
        if count:
            old.delete()
            purged += count
            ledger_append(kind=MonitoringKind.JOIN_RECORDS_PURGED, subject=plan.ledger_subject,
                          payload={"purged": count, "before": iso_utc(now - delay)}, actor=None)
    return purged


# --- findings and incidents -------------------------------------------------------------------


def _lock_finding(finding) -> Finding:
    return Finding.objects.select_for_update().select_related("plan", "plan__release").get(pk=finding.pk)


def _justified(justification: str, what: str) -> str:
    if len((justification or "").strip()) < JUSTIFICATION_MIN_LENGTH:
        raise ValidationError({"justification": f"{what} needs a written justification "
                                                f"(at least {JUSTIFICATION_MIN_LENGTH} characters)."})
    return justification


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@transaction.atomic(durable=True)
def finding_dismiss(*, finding: Finding, justification: str, actor) -> Finding:
    """Dismiss an open finding with a written justification."""
    finding = _lock_finding(finding)
    require(actor, "monitoring.change_finding", finding.plan.business_unit, what="triage monitoring findings")
    if finding.state != Finding.State.OPEN:
        raise MonitoringConflict(f"Finding {finding.pk} is {finding.state}, not open.")
    finding.justification = _justified(justification, "Dismissing a finding")
    finding.state, finding.triaged_by, finding.triaged_at = Finding.State.DISMISSED, recorded_user(actor), timezone.now()
    finding.save()
    ledger_append(kind=MonitoringKind.FINDING_DISMISSED, subject=finding.ledger_subject,
                  payload={"justification_sha256": _sha(justification)}, actor=actor)
    return finding


@transaction.atomic(durable=True)
def incident_open(*, finding: Finding, category: str, aware_at, description: str, actor) -> Incident:
    """Open a serious incident (Art. 73) from FINDING; its deadline follows from CATEGORY and AWARE_AT."""
    finding = _lock_finding(finding)
    require(actor, "monitoring.add_incident", finding.plan.business_unit, what="open incidents")
    if finding.state != Finding.State.OPEN:
        raise MonitoringConflict(f"Finding {finding.pk} is {finding.state}, not open.")
    if aware_at.tzinfo is None:
        raise ValidationError({"aware_at": "A time with a zone."})
    if aware_at > timezone.now() + timedelta(minutes=5):
        raise ValidationError({"aware_at": "Awareness cannot be in the future."})
    try:
        deadline = plans.incident_deadline(category, aware_at)
    except ValueError as exc:
        raise ValidationError({"category": str(exc)}) from None
    _justified(description, "An incident")
    incident = Incident.objects.create(plan=finding.plan, finding=finding, category=category, aware_at=aware_at,
                                       deadline=deadline, description=description, opened_by=recorded_user(actor))
    finding.state, finding.triaged_by, finding.triaged_at = Finding.State.INCIDENT, recorded_user(actor), timezone.now()
    finding.save()
    ledger_append(
        kind=MonitoringKind.INCIDENT_OPENED, subject=incident.ledger_subject,
        payload={"finding": finding.ledger_subject, "category": category, "aware_at": iso_utc(aware_at),
                 "deadline": iso_utc(deadline), "deadline_days": plans.INCIDENT_DEADLINE_DAYS[category],
                 "description_sha256": _sha(description)},
        actor=actor,
    )
    return incident


@transaction.atomic(durable=True)
def incident_report(*, incident: Incident, reported_at, reference: str, actor) -> Incident:
    """Record that INCIDENT was reported to the market surveillance authority."""
    incident = Incident.objects.select_for_update().select_related("plan").get(pk=incident.pk)
    require(actor, "monitoring.change_incident", incident.plan.business_unit, what="record incident reports")
    if incident.reported_at is not None:
        raise MonitoringConflict(f"Incident {incident.pk} was reported already.")
    if reported_at.tzinfo is None or reported_at < incident.aware_at:
        raise ValidationError({"reported_at": "A time with a zone, not before the provider became aware."})
    incident.reported_at, incident.report_reference = reported_at, reference[:200]
    incident.save(update_fields=["reported_at", "report_reference"])
    ledger_append(
        kind=MonitoringKind.INCIDENT_REPORTED, subject=incident.ledger_subject,
        payload={"reported_at": iso_utc(reported_at), "deadline": iso_utc(incident.deadline),
                 "late": reported_at > incident.deadline, "reference_sha256": _sha(reference)},
        actor=actor,
    )
    return incident


@transaction.atomic(durable=True)
def revocation_request(*, finding: Finding, justification: str, actor) -> Finding:
    """Ask for the revocation of the release behind FINDING's plan (a Compliance Officer decides)."""
    finding = _lock_finding(finding)
    require(actor, "monitoring.change_finding", finding.plan.business_unit, what="triage monitoring findings")
    if finding.state not in (Finding.State.OPEN, Finding.State.INCIDENT):
        raise MonitoringConflict(f"Finding {finding.pk} is {finding.state}.")
    finding.justification = _justified(justification, "A revocation request")
    finding.state, finding.triaged_by, finding.triaged_at = (Finding.State.REVOCATION_REQUESTED, recorded_user(actor),
                                                             timezone.now())
    finding.save()
    ledger_append(kind=MonitoringKind.REVOCATION_REQUESTED, subject=finding.ledger_subject,
                  payload={"release_id": finding.plan.release_id, "justification_sha256": _sha(justification)},
                  actor=actor)
    return finding


@transaction.atomic(durable=True)
def revocation_execute(*, finding: Finding, justification: str, actor) -> Finding:
    """Revoke the release behind FINDING through governance's release service (its rules apply)."""
    finding = _lock_finding(finding)
    require(actor, "monitoring.revoke_finding", finding.plan.business_unit, what="revoke releases for findings")
    if finding.state != Finding.State.REVOCATION_REQUESTED:
        raise MonitoringConflict(f"Finding {finding.pk} is {finding.state}; a revocation must be requested first.")
    release = _release_revoke(release=finding.plan.release, justification=justification, actor=actor)
    finding.state = Finding.State.REVOKED
    finding.save(update_fields=["state"])
    ledger_append(kind=MonitoringKind.REVOCATION_EXECUTED, subject=finding.ledger_subject,
                  payload={"release_id": release.pk, "release_state": release.state}, actor=actor)
    return finding


__all__ = [
    "plan_on_approval", "plan_version_publish", "batch_ingest", "aggregate_ingest", "labels_record", "window_close",
    "windows_close", "join_records_purge", "finding_dismiss", "incident_open", "incident_report",
    "revocation_request", "revocation_execute", "reference_compute",
]
