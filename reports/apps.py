from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self):
        # Imported once the app registry is ready (Django's rule for AppConfig.ready()).
        from audit.kinds import register_kinds
        from governance.admin.links import register_object_links
        from governance.demo import register_demo_step
        from governance.templatetags.attention import register_panel

        from .rules.kinds import ReportKind

        register_kinds(ReportKind)
        register_demo_step("reports.demo.issue_reports", order=90)
        register_demo_step("reports.demo.issue_certificate", order=91)
        register_object_links("governance.modelversion", "reports.admin.reports.model_version_links")
        register_object_links("governance.erasurerequest", "reports.admin.reports.erasure_request_links")
        register_panel("reports", template="admin/reports/panel.html", context="reports.admin.reports.reports_panel",
                       order=50)
