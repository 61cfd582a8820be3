"""Celery tasks of monitoring: they call one service."""

from celery import shared_task

from .services import windows_close


@shared_task(name="monitoring.windows_close")
def windows_close_task() -> list[int]:
    """Close and evaluate the windows that have ended; return their ids."""
    return [w.pk for w in windows_close()]
