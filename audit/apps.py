from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit ledger"

    def ready(self):
        from . import checks  # noqa: F401  (registers system checks)
