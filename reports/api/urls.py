"""Reports API routes (under /api/v1/)."""

from django.urls import path

from . import reports

urlpatterns = [
    path("reports", reports.ReportListView.as_view(), name="reports"),
    path("reports/verify", reports.ReportVerifyView.as_view(), name="report-verify"),
    path("reports/<int:pk>", reports.ReportDetailView.as_view(), name="report"),
    path("reports/<int:pk>/pdf", reports.ReportFileView.as_view(), name="report-file"),
    path("reports/<int:pk>/ml-bom", reports.ReportMLBOMView.as_view(), name="report-ml-bom"),
    path("reports/<int:pk>/csv", reports.ReportCSVView.as_view(), name="report-csv"),
]
