"""What happens when a gate run ends: the run's outcome and the releases waiting on it, together.

This module sits above ``services.gates`` and ``services.releases`` and composes them, so that
neither imports the other the wrong way: releases use the gate services to start a run, and the
gate services know nothing of releases. Recording a run's end and moving its releases on is one
transaction (the releases' state never disagrees with the run's). The workers' tasks call here.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..gates import GateInputError, PolicyError
from ..models import GateRun
from ..storage import SnapshotUnreadable, artifacts
from .gates import gate_run_compute, gate_run_finish, gate_run_start, unexpected_failure
from .releases import release_gates_from_run

@transaction.atomic(durable=True)
def gate_run_conclude(*, run: GateRun, result: dict | None, reason: str = "") -> GateRun:
    """Record RUN's end (its RESULT, or an error with REASON) and move its waiting releases on."""
    run = gate_run_finish(run=run, result=result, reason=reason)
    release_gates_from_run(run=run)
    return run


def gate_run_execute(*, run_id: int) -> GateRun:
    """Run a queued gate run to its end. Every failure ends in status error with the reason."""
    run = gate_run_start(run=GateRun.objects.get(pk=run_id))
    try:
        result = gate_run_compute(run)
    except (artifacts.ArtifactRefused, SnapshotUnreadable, GateInputError, PolicyError) as exc:
        return gate_run_conclude(run=run, result=None, reason=str(exc))
    except Exception as exc:  # never a crash, never a pass: an error with the reason
        return gate_run_conclude(run=run, result=None, reason=unexpected_failure(exc))
    return gate_run_conclude(run=run, result=result)


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
            abandoned.append(gate_run_conclude(run=run, result=None, reason=reason))
        except ValidationError:
            continue  # a worker finished it meanwhile
    return abandoned
