"""Reports API: ask for a report (202, rendered on a worker), read its state, download its file,
its ML-BOM or inventory CSV, and ask whether Custos issued a file with a given SHA-256.

Auditors read every report; officers and validators those of their units; another unit's
report is a 404, as if it did not exist.
"""

import re

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as InputError
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.pdf import PDFError, embedded_file
from config.api import Pagination, problem_responses
from config.idempotency.api import IDEMPOTENCY_PARAMETER, idempotent

from ..models import Report
from ..rules.documents import DocumentKind
from ..selectors.reports import report_by_sha256, report_get, reports_for
from ..services.reports import report_content, report_request

SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class ReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=[k.value for k in DocumentKind])
    subject = serializers.CharField(source="about", help_text="The ledger subject the report is about.")
    business_unit = serializers.CharField(source="business_unit.slug", allow_null=True, default=None)
    state = serializers.ChoiceField(choices=Report.State.values)
    progress = serializers.IntegerField(help_text="Percent rendered.")
    step = serializers.CharField(help_text="What the worker is doing now.")
    error = serializers.CharField()
    checkpoint = serializers.IntegerField(source="checkpoint_size", allow_null=True,
                                          help_text="Tree size of the as-of checkpoint.")
    as_of = serializers.DateTimeField(allow_null=True)
    sha256 = serializers.CharField(help_text="SHA-256 of the issued file (empty until issued).")
    size_bytes = serializers.IntegerField(allow_null=True)
    media_type = serializers.CharField()
    attachments = serializers.JSONField(help_text="[{name, media_type, sha256}] the PDF carries.")
    issuer = serializers.CharField(source="issuer.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    issued_at = serializers.DateTimeField(allow_null=True)
    ledger_seq = serializers.IntegerField(allow_null=True, help_text="Sequence number of report.issued.")


class ReportListView(APIView):
    """The reports the caller may read (newest first), and asking for a new one."""

    pagination_class = Pagination  # the schema documents the list as the paginated page it is

    class ReportRequestSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=[k.value for k in DocumentKind])
        subject = serializers.CharField(max_length=100, help_text="governance.modelversion:ID, or for an inventory "
                                                                  "governance.businessunit:ID or governance.businessunit:all.")

    @extend_schema(operation_id="reports_list", responses={200: ReportSerializer(many=True), **problem_responses()})
    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(reports_for(request.user), request, view=self)
        return paginator.get_paginated_response(ReportSerializer(page, many=True).data)

    @extend_schema(
        operation_id="reports_request",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=ReportRequestSerializer,
        responses={202: ReportSerializer, **problem_responses(400, 403, 404, 422)},
    )
    def post(self, request):
        def act():
            data = self.ReportRequestSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            report = report_request(actor=request.user, **data.validated_data)
            return Response(ReportSerializer(report_get(user=request.user, pk=report.pk)).data, status=202)

        return idempotent(request, "reports.request", act)


class ReportDetailView(APIView):
    """One report: its state and progress while it renders, its hashes once issued."""

    @extend_schema(operation_id="reports_read", responses={200: ReportSerializer, **problem_responses(404)})
    def get(self, request, pk):
        return Response(ReportSerializer(report_get(user=request.user, pk=pk)).data)


def _file_response(content: bytes, media_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=media_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ReportFileView(APIView):
    """The issued PDF (or, for an ML-BOM, the JSON) exactly as ledgered."""

    @extend_schema(operation_id="reports_file", responses={
        (200, "application/pdf"): OpenApiResponse(response=OpenApiTypes.BINARY, description="The issued PDF/A-3b file"),
        (200, "application/vnd.cyclonedx+json"): OpenApiResponse(response=OpenApiTypes.OBJECT, description="The issued ML-BOM"),
        **problem_responses(404, 409)})
    def get(self, request, pk):
        report = report_get(user=request.user, pk=pk)
        return _file_response(report_content(report), report.media_type, report.filename)


class ReportMLBOMView(APIView):
    """The CycloneDX 1.6 ML-BOM of an issued ML-BOM report, or the one a dossier carries."""

    @extend_schema(operation_id="reports_ml_bom", responses={
        (200, "application/vnd.cyclonedx+json"): OpenApiResponse(response=OpenApiTypes.OBJECT, description="CycloneDX 1.6 JSON"),
        **problem_responses(404, 409)})
    def get(self, request, pk):
        report = report_get(user=request.user, pk=pk)
        return _attached(report, "ml-bom.cdx.json", "application/vnd.cyclonedx+json",
                         whole=report.kind == DocumentKind.ML_BOM)


class ReportCSVView(APIView):
    """The model inventory's rows as CSV (the file the inventory PDF carries)."""

    @extend_schema(operation_id="reports_inventory_csv", responses={
        (200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR, description="The inventory as CSV"), **problem_responses(404, 409)})
    def get(self, request, pk):
        report = report_get(user=request.user, pk=pk)
        return _attached(report, "model-inventory.csv", "text/csv", whole=False)


def _attached(report, name, media_type, *, whole):
    content = report_content(report)
    if whole:
        return _file_response(content, media_type, report.filename)
    if report.media_type != "application/pdf" or name not in {a["name"] for a in report.attachments}:
        raise Http404(f"Report {report.pk} carries no {name}.")
    try:
        attached = embedded_file(content, name).content
    except PDFError as exc:  # the stored PDF was checked when issued: say so rather than a 500
        raise Http404(f"Report {report.pk}'s {name} cannot be read: {exc}") from exc
    return _file_response(attached, media_type, f"{report.filename.rsplit('.', 1)[0]}-{name}")


class ReportVerifyView(APIView):
    """Did Custos issue a file with this SHA-256? Answers with the report, or 404."""

    @extend_schema(operation_id="reports_verify",
                   parameters=[OpenApiParameter("sha256", str, required=True, description="64 hex digits")],
                   responses={200: ReportSerializer, **problem_responses(400, 404)})
    def get(self, request):
        sha256 = request.query_params.get("sha256", "")
        if not SHA256_RE.match(sha256):
            raise InputError({"sha256": "Give the file's SHA-256 as 64 hex digits."})
        report = report_by_sha256(user=request.user, sha256=sha256)
        if report is None:
            raise Http404("Custos issued no report you may read with this SHA-256.")
        return Response(ReportSerializer(report).data)
