from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from . import checks, schema  # noqa: F401  (system checks; the OpenAPI auth extension)
        from .roles import sync_role_permissions

        post_migrate.connect(sync_role_permissions, dispatch_uid="custos.sync_role_permissions")

        from config.views import HEALTH_CHECKS, register_health_check

        from .storage import load_secret_key

        # Without them every upload and subject lookup fails: say so as "storage_keys": "fail"
        # (no path, no key material), as the ledger does for its signing key.
        def storage_keys():
            load_secret_key("CUSTOS_MASTER_KEY")
            load_secret_key("CUSTOS_INDEX_KEY")

        if not any(name == "storage_keys" for name, _ in HEALTH_CHECKS):
            register_health_check("storage_keys", storage_keys)
