from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MonitoringConfig(AppConfig):
    name = "governance.monitoring"
    label = "monitoring"
    verbose_name = "Post-market monitoring"

    def ready(self):
        # Imported once the app registry is ready (Django's rule for AppConfig.ready()).
        from audit.kinds import register_kinds
        from governance.demo import register_demo_step
        from governance.selectors.releases import register_status_fact
        from governance.services.releases import register_approval_hook
        from governance.templatetags.attention import register_panel

        from .kinds import MonitoringKind
        from .services import role_permissions_add

        register_kinds(MonitoringKind)
        register_approval_hook("governance.monitoring.services.plan_on_approval")
        register_status_fact("monitoring", "governance.monitoring.selectors.monitoring_health")
        register_panel("monitoring", template="admin/monitoring/attention_panel.html",
                       context="governance.monitoring.selectors.attention", order=20)
        register_demo_step("governance.monitoring.demo.monitoring", order=100)
        post_migrate.connect(role_permissions_add, dispatch_uid="custos.monitoring.role_permissions_add")
