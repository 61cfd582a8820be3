"""Celery tasks of the governance app: they take ids and call one service."""

from celery import shared_task

from .services.erasure import erasure_run
from .services.gates import gate_run_reverify
from .services.gating import gate_runs_abandon_stuck, gate_run_execute


@shared_task(name="governance.gate_run_execute")
def gate_run_execute_task(run_id: int) -> str:
    """Execute a queued gate run; return its final status."""
    return gate_run_execute(run_id=run_id).status


@shared_task(name="governance.gate_run_reverify")
def gate_run_reverify_task(reverification_id: int) -> str:
    """Re-compute a gate run and compare it with its stored result; return the outcome."""
    return gate_run_reverify(reverification_id=reverification_id).status


@shared_task(name="governance.gate_runs_abandon_stuck")
def gate_runs_abandon_stuck_task() -> list[int]:
    """End in error the gate runs no worker finished in time; return their ids."""
    return [run.pk for run in gate_runs_abandon_stuck()]


@shared_task(name="governance.erasure_run")
def erasure_run_task(request_id: int) -> str:
    """Execute (or resume) an approved erasure plan, one crash-safe step at a time; return the request's state."""
    return erasure_run(request_id=request_id)
