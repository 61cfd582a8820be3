"""The Celery task Celery beat runs: registered by name, closes the windows that have ended."""

import io
from datetime import timedelta

from django.conf import settings

from config.tasks import registered_task
from governance.monitoring.models import MonitoringWindow
from governance.monitoring.services import batch_ingest, plan_version_publish

from .conftest import scored_rows


def test_beat_closes_the_windows_that_have_ended(production_plan, monitoring_people):
    from django.utils import timezone

    assert settings.CELERY_BEAT_SCHEDULE["monitoring-windows-close"]["task"] == "monitoring.windows_close"
    origin = (timezone.now() - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    plan_version_publish(plan=production_plan, changes={"origin": origin.isoformat()}, actor=monitoring_people["admin"])
    rows, _ = scored_rows(production_plan.model_version, 100, start=origin, step=timedelta(hours=2))
    batch_ingest(plan=production_plan, source=io.BytesIO(rows.to_csv(index=False).encode()), file_format="csv",
                 actor=monitoring_people["pipeline"])
    ids = registered_task("monitoring.windows_close").delay().get()
    closed = MonitoringWindow.objects.get(state="closed")
    assert ids == [closed.pk] and closed.end <= timezone.now()
    assert MonitoringWindow.objects.filter(state="open").count() == 1  # the window of today
