from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from . import checks, schema  # noqa: F401  (system checks; the OpenAPI auth extension)
        from .roles import sync_role_permissions

        post_migrate.connect(sync_role_permissions, dispatch_uid="custos.sync_role_permissions")
