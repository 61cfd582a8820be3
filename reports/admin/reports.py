"""The reports admin: issued reports with their hashes and downloads, issuing a report after a
confirmation page, the documents as HTML, and the links on a model version's page.

Issuing is irreversible (an issued report and its ledger entry stay), so "Dossier" first shows
what will be issued and asks; the rendering then runs on a worker and the report's page shows
its progress.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from audit.selectors import checkpoint_latest
from config.errors import DomainError, refusal_text
from governance.admin.base import ServiceWritesAdmin
from governance.selectors.access import business_units_for, sees_all_units
from governance.selectors.erasure import erasure_certificate_facts
from governance.selectors.releases import model_version_get

from ..documents.erasure_certificate import NotCompleted
from ..documents.render import document_html
from ..models import Report
from ..rules.documents import ALL_UNITS, TITLES, DocumentKind
from ..selectors.reports import reports_for
from ..services.reports import report_content, report_request


def model_version_links(obj, user) -> list[tuple[str, str]]:
    """"Documentation", "Dossier", "ML-BOM" on a model version's admin page (governance.admin.links)."""
    if not user.has_perm("reports.view_report"):
        return []
    return [(label, reverse("admin:reports_report_issue", args=[kind.value, obj.pk]))
            for label, kind in (("Documentation", DocumentKind.ANNEX_IV), ("Dossier", DocumentKind.DOSSIER),
                                ("ML-BOM", DocumentKind.ML_BOM))]


def erasure_request_links(obj, user) -> list[tuple[str, str]]:
    """"Certificate" on a completed erasure request's admin page (governance.admin.links)."""
    if obj.completed_at is None or not user.has_perm("reports.add_report"):
        return []
    return [("Certificate", reverse("admin:reports_report_issue", args=[DocumentKind.ERASURE_CERTIFICATE.value, obj.pk]))]


def reports_panel(user) -> dict | None:
    """The index panel: the inventory and the latest issued reports."""
    if not user.has_perm("reports.view_report"):
        return None
    return {"show": True, "issued": reports_for(user).filter(state=Report.State.ISSUED).count(),
            "inventory": reverse("admin:reports_report_inventory")}


@admin.register(Report)
class ReportAdmin(ServiceWritesAdmin):
    list_display = ["pk", "kind", "about", "state", "progress", "checkpoint_size", "short_sha256", "issuer",
                    "created_at", "download"]
    list_filter = ["kind", "state"]
    search_fields = ["about", "sha256"]
    fields = ["kind", "about", "business_unit", "state", "progress", "step", "error", "checkpoint_size", "as_of",
              "template_version", "media_type", "sha256", "size_bytes", "attachments_table", "issuer", "created_at",
              "issued_at", "ledger_seq", "download"]
    readonly_fields = fields

    def get_queryset(self, request):
        return reports_for(request.user)

    def has_add_permission(self, request):
        return False  # issued from a model version's page or the inventory link, after confirmation

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="SHA-256")
    def short_sha256(self, obj):
        return obj.sha256[:16]

    @admin.display(description="file")
    def download(self, obj):
        if obj.state != Report.State.ISSUED:
            return obj.get_state_display()
        return format_html('<a href="{}">Download</a>', reverse("admin:reports_report_download", args=[obj.pk]))

    @admin.display(description="attached files")
    def attachments_table(self, obj):
        rows = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
                                ((a["name"], a["media_type"], a["sha256"]) for a in obj.attachments))
        return format_html("<table><tr><th>File</th><th>Media type</th><th>SHA-256</th></tr>{}</table>",
                           rows) if rows else "—"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("issue/<str:kind>/<int:pk>/", wrap(self.issue_view), name="reports_report_issue"),
            path("inventory/", wrap(self.inventory_view), name="reports_report_inventory"),
            path("preview/<str:kind>/<int:pk>/", wrap(self.preview_view), name="reports_report_preview"),
            path("<int:pk>/download/", wrap(self.download_view), name="reports_report_download"),
            *super().get_urls(),
        ]

    def _confirm(self, request, *, kind: DocumentKind, subject: str, what: str, preview: str | None):
        if request.method == "POST":
            try:
                report = report_request(kind=kind.value, subject=subject, actor=request.user)
            except (DomainError, ValidationError, PermissionDenied) as exc:
                messages.error(request, refusal_text(exc))
            else:
                messages.success(request, f"Report {report.pk} requested: it renders on a worker; this page shows "
                                          "its progress.")
                return redirect("admin:reports_report_change", report.pk)
        return TemplateResponse(request, "admin/reports/report/issue.html", {
            **self.admin_site.each_context(request), "title": f"Issue: {TITLES[kind]}", "document": TITLES[kind], "kind": kind,
            "subject": subject, "what": what, "preview": preview, "opts": self.model._meta,
            "may_issue": request.user.has_perm("reports.add_report"),
        })

    def issue_view(self, request, kind, pk):
        try:
            kind = DocumentKind(kind)
        except ValueError:
            raise Http404("No such report kind.") from None
        if kind == DocumentKind.INVENTORY:
            raise Http404("The inventory is issued from its own page.")
        preview = reverse("admin:reports_report_preview", args=[kind.value, pk])
        if kind == DocumentKind.ERASURE_CERTIFICATE:
            erasure = erasure_certificate_facts(user=request.user, pk=pk)["request"]
            return self._confirm(request, kind=kind, subject=erasure.ledger_subject,
                                 what=f"erasure request {erasure.reference}", preview=preview)
        mv = model_version_get(user=request.user, pk=pk)
        preview = None if kind == DocumentKind.ML_BOM else preview
        return self._confirm(request, kind=kind, subject=mv.ledger_subject, what=f"{mv.model.name} {mv.version}",
                             preview=preview)

    def inventory_view(self, request):
        user = request.user
        if sees_all_units(user) or user.is_superuser:
            subject, what = ALL_UNITS, "every business unit"
        else:
            unit = business_units_for(user).order_by("name").first()
            if unit is None:
                raise Http404("You may see no business unit.")
            subject, what = unit.ledger_subject, unit.name
        return self._confirm(request, kind=DocumentKind.INVENTORY, subject=subject, what=what, preview=None)

    def preview_view(self, request, kind, pk):
        """The document as HTML, as of the latest checkpoint (the same HTML the PDF is rendered from)."""
        if kind == DocumentKind.ERASURE_CERTIFICATE:
            subject = erasure_certificate_facts(user=request.user, pk=pk)["request"].ledger_subject
        else:
            subject = model_version_get(user=request.user, pk=pk).ledger_subject
        checkpoint = checkpoint_latest()
        if checkpoint is None or kind not in (DocumentKind.ANNEX_IV, DocumentKind.DOSSIER,
                                              DocumentKind.ERASURE_CERTIFICATE):
            raise Http404("Nothing to preview yet.")
        try:
            html, _, _ = document_html(kind, subject, user=request.user, checkpoint=checkpoint)
        except NotCompleted as exc:
            raise Http404(str(exc)) from None
        return HttpResponse(html)

    def download_view(self, request, pk):
        report = self.get_queryset(request).filter(pk=pk).first()
        if report is None:
            raise Http404("No such report.")
        response = HttpResponse(report_content(report), content_type=report.media_type)
        response["Content-Disposition"] = f'attachment; filename="{report.filename}"'
        return response
