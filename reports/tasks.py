"""Celery tasks of the reports app: they take ids and call one service."""

from celery import shared_task

from .services.reports import RENDER_TASK, report_render


@shared_task(name=RENDER_TASK)
def report_render_task(report_id: int) -> str:
    """Render and issue a requested report; return its state."""
    return report_render(report_id=report_id).state
