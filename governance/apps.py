from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        # Imported once the app registry is ready (Django's rule for AppConfig.ready()).
        from audit.kinds import register_kinds
        from config.views import HEALTH_CHECKS, register_health_check

        from . import checks  # noqa: F401  (registers the system checks)
        from .api import schema  # noqa: F401  (registers the OpenAPI description of bearer tokens)
        from .templatetags.attention import register_panel
        from .demo import register_demo_step
        from .rules.kinds import GovernanceKind
        from .selectors.releases import register_status_fact
        from .services.access import role_permissions_sync
        from .storage import load_secret_key

        register_kinds(GovernanceKind)
        register_panel("releases", template="admin/governance/releaserequest/attention_panel.html",
                       context="governance.templatetags.release_admin.release_attention", order=10)
        register_panel("erasure", template="admin/governance/erasurerequest/attention_panel.html",
                       context="governance.templatetags.erasure_admin.erasure_attention", order=20)
        register_demo_step("governance.demo.users.users_and_units", order=10)
        for order, step in enumerate(("registry_data", "gate_runs", "releases"), start=2):
            register_demo_step(f"governance.demo.steps.{step}", order=10 * order)
        register_demo_step("governance.demo.walkthrough.walkthrough", order=50)
        register_demo_step("governance.demo.erasure.erasure_requests", order=60)
        register_status_fact("erasure_review", "governance.selectors.erasure.release_status_fact")
        post_migrate.connect(role_permissions_sync, dispatch_uid="custos.role_permissions_sync")

        # Without them every upload and subject lookup fails: say so as "storage_keys": "fail"
        # (no path, no key material), as the ledger does for its signing key.
        def storage_keys():
            load_secret_key("CUSTOS_MASTER_KEY")
            load_secret_key("CUSTOS_INDEX_KEY")

        if not any(name == "storage_keys" for name, _ in HEALTH_CHECKS):
            register_health_check("storage_keys", storage_keys)
