"""Ingest OpenLineage events: map jobs, runs and their datasets to registry objects, ledgered.

A run event creates (or finds) the TrainingRun with that runId, and links each input and
output dataset as a DatasetVersion (its `version` facet, else a version named after its
schema). A dataset a pipeline also uploaded under the same name and version is the same
DatasetVersion, so OpenLineage lineage leads to the encrypted snapshot. Re-sending an event
(same body, or the same runId and START/COMPLETE/ABORT/FAIL type) changes nothing.
"""

import hashlib

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.canonical import canonical_json
from config.errors import Conflict
from audit.services import ledger_append

from ..rules.kinds import GovernanceKind
from ..models import Dataset, DatasetVersion, OpenLineageEvent, TrainingRun, TrainingRunInput, TrainingRunOutput
from ..rules.openlineage import TERMINAL, LineageEvent, parse_event
from .guards import require


class EventConflict(Conflict):
    """Another event with this runId and event type was already accepted, with a different body."""


def _dataset_version(unit, ds, actor):
    name = f"{ds.namespace}/{ds.name}"
    if len(name) > 200:
        raise ValidationError(f"Dataset name {name[:60]!r}… is longer than 200 characters.")
    dataset = Dataset.objects.filter(business_unit=unit, name=name).first()
    if dataset is None:
        dataset = Dataset.objects.create(business_unit=unit, name=name, description="Reported by OpenLineage.")
        ledger_append(
            kind=GovernanceKind.DATASET_CREATED,
            subject=dataset.ledger_subject,
            payload={"business_unit_id": unit.pk, "name": name, "source": "openlineage"},
            actor=actor,
        )
    schema_digest = hashlib.sha256(canonical_json(ds.schema)).hexdigest()
    version = ds.version or (f"schema-{schema_digest[:16]}" if ds.schema else "unversioned")
    dv = DatasetVersion.objects.filter(dataset=dataset, version=version).first()
    if dv is None:
        dv = DatasetVersion(
            dataset=dataset,
            version=version,
            storage=DatasetVersion.Storage.OPENLINEAGE,
            uri=name,
            schema=ds.schema,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        dv.save()
        ledger_append(
            kind=GovernanceKind.DATASET_VERSION_REPORTED,
            subject=dv.ledger_subject,
            payload={"dataset_id": dataset.pk, "version": version, "schema_sha256": schema_digest},
            actor=actor,
        )
    return dv


def _run(unit, event: LineageEvent, actor):
    run = TrainingRun.objects.select_for_update().filter(business_unit=unit, external_run_id=event.run_id).first()
    if run is None:
        run = TrainingRun.objects.create(
            business_unit=unit,
            external_run_id=event.run_id,
            name=f"{event.job_namespace}.{event.job_name}"[:200],
            source=TrainingRun.Source.OPENLINEAGE,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
    changed = []
    if event.event_type == "START" and run.started_at is None:
        run.started_at = event.event_time
        changed.append("started_at")
    if event.event_type in TERMINAL and run.ended_at is None:
        run.ended_at = event.event_time
        changed.append("ended_at")
    # The latest state wins unless a terminal state is already recorded.
    if run.state not in TERMINAL or event.event_type in TERMINAL:
        run.state = event.event_type
        changed.append("state")
    if changed:
        run.save(update_fields=changed)
    return run


def openlineage_event_ingest(*, unit, body: dict, actor=None) -> tuple[OpenLineageEvent, bool]:
    """Record one OpenLineage event for UNIT; return (event, created). Idempotent."""
    require(actor, "governance.add_openlineageevent", unit)
    event = parse_event(body)  # raises OpenLineageInvalid (a 400 naming the field)
    sha256 = hashlib.sha256(canonical_json(body)).hexdigest()
    existing = OpenLineageEvent.objects.filter(business_unit=unit, sha256=sha256).first()
    if existing:
        return existing, False
    if event.kind == "run" and event.event_type in {"START", *TERMINAL}:
        if OpenLineageEvent.objects.filter(
            business_unit=unit, event_kind="run", openlineage_run_id=event.run_id, event_type=event.event_type
        ).exists():
            raise EventConflict(
                f"A {event.event_type} event of run {event.run_id} was already received with a different body."
            )
    try:
        with transaction.atomic(durable=True):
            return _ingest(unit, event, body, sha256, actor), True
    except IntegrityError:  # a concurrent re-send won the race
        existing = OpenLineageEvent.objects.filter(business_unit=unit, sha256=sha256).first()
        if existing:
            return existing, False
        raise EventConflict("This event conflicts with one received at the same time.") from None


def _ingest(unit, event, body, sha256, actor):
    inputs = [_dataset_version(unit, ds, actor) for ds in event.inputs + event.datasets]
    outputs = [_dataset_version(unit, ds, actor) for ds in event.outputs]
    run = _run(unit, event, actor) if event.kind == "run" else None
    if run is not None:
        for dv in inputs:
            TrainingRunInput.objects.get_or_create(run=run, dataset_version=dv, role=TrainingRunInput.Role.INPUT)
        for dv in outputs:
            TrainingRunOutput.objects.get_or_create(run=run, dataset_version=dv)
    record = OpenLineageEvent.objects.create(
        event_kind=event.kind,
        event_type=event.event_type,
        openlineage_run_id=event.run_id,
        job_namespace=event.job_namespace,
        job_name=event.job_name,
        event_time=event.event_time,
        sha256=sha256,
        body=body,
        business_unit=unit,
        training_run=run,
    )
    ledger_append(
        kind=GovernanceKind.OPENLINEAGE_EVENT_RECEIVED,
        subject=record.ledger_subject,
        payload={
            "event_sha256": sha256,
            "event_kind": event.kind,
            "event_type": event.event_type,
            "run_id": event.run_id,
            "job": f"{event.job_namespace}.{event.job_name}" if event.job_name else "",
            "training_run_id": run.pk if run else None,
            "input_dataset_version_ids": [dv.pk for dv in inputs],
            "output_dataset_version_ids": [dv.pk for dv in outputs],
        },
        actor=actor,
    )
    return record
