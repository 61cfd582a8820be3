from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self):
        # Imported once the app registry is ready (Django's rule for AppConfig.ready()).
        from audit.kinds import register_kinds
        from governance.demo import register_demo_step

        from .rules.kinds import ReportKind

        register_kinds(ReportKind)
        register_demo_step("reports.demo.issue_reports", order=90)
