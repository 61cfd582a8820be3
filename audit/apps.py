from datetime import UTC, datetime, timedelta

from django.apps import AppConfig
from django.conf import settings


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit ledger"

    def ready(self):
        # Imported once the app registry is ready (Django's rule for AppConfig.ready()).
        from config.views import HEALTH_CHECKS, register_health_check

        from . import checks  # noqa: F401  (registers system checks)
        from .keys import signing_key

        # /healthz says "signing_key": "ok" or "fail" and nothing more (no path, no key material).
        if not any(name == "signing_key" for name, _ in HEALTH_CHECKS):
            register_health_check("signing_key", signing_key)
            register_health_check("ledger_queue", ledger_queue_drained)


def ledger_queue_drained():
    """Fail when a committed entry has waited to be sealed longer than a checkpoint interval and a minute.

    Entries queued under concurrent writers are sealed within milliseconds, or at the latest by
    the next checkpoint (docs/ledger.md, "Concurrent writers"); one older than that means the
    sealing is not happening (no beat, or every attempt failing: see the logs).
    """
    from .selectors import queued_count  # reads a model: not importable when apps.py is

    _count, oldest = queued_count()
    if oldest is not None and datetime.now(UTC) - oldest > timedelta(seconds=settings.CUSTOS_CHECKPOINT_INTERVAL + 60):
        raise RuntimeError("ledger entries wait to be sealed")
