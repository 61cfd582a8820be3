"""Celery tasks of the governance app: they take ids and call one service."""

from celery import shared_task


@shared_task(name="governance.gate_run_execute")
def gate_run_execute_task(run_id: int) -> str:
    """Execute a queued gate run; return its final status."""
    from .services.gates import gate_run_execute

    return gate_run_execute(run_id=run_id).status


@shared_task(name="governance.gate_runs_abandon_stuck")
def gate_runs_abandon_stuck_task() -> list[int]:
    """End in error the gate runs no worker finished in time; return their ids."""
    from .services.gates import gate_runs_abandon_stuck

    return [run.pk for run in gate_runs_abandon_stuck()]
