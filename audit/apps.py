from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit ledger"

    def ready(self):
        from config.views import HEALTH_CHECKS, register_health_check

        from . import checks  # noqa: F401  (registers system checks)
        from .keys import signing_key

        # /healthz says "signing_key": "ok" or "fail" and nothing more (no path, no key material).
        if not any(name == "signing_key" for name, _ in HEALTH_CHECKS):
            register_health_check("signing_key", signing_key)
