"""Monitoring API: plans and their windows, batch ingestion (pipeline token, unit-scoped,
size-limited, idempotent by the batch's SHA-256), pre-aggregated windows, and labels.

Views parse, call one service or selector, and render; another unit's plan is 404.
"""

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import Pagination, problem_responses
from config.parsers import JSONParser
from governance.api.registry import UploadView

from .vocabulary import FORMATS, iso_utc
from .models import Finding
from .selectors import findings_for, plan_get, plan_health, plans_for, windows_of
from .services import aggregate_ingest, batch_ingest, labels_record, plan_version_current

LABELS_PER_REQUEST = 100_000


def _plan(request, pk):
    plan = plan_get(user=request.user, pk=pk)
    if plan is None:
        raise exceptions.NotFound()
    return plan


class PlanSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="model_version.model.name")
    version = serializers.CharField(source="model_version.version")
    business_unit = serializers.CharField(source="model_version.model.business_unit.slug")
    release_id = serializers.IntegerField()
    status = serializers.CharField()
    reference_digest = serializers.CharField()
    reference_origin = serializers.CharField()
    reference_rows = serializers.SerializerMethodField()
    reference_problem = serializers.CharField()
    timestamp_column = serializers.CharField()
    prediction_id_column = serializers.CharField()
    columns = serializers.SerializerMethodField(help_text="The columns a batch must carry.")
    policy = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField()

    def get_reference_rows(self, obj) -> int | None:
        return (obj.reference or {}).get("rows")

    def get_columns(self, obj) -> dict:
        spec = (obj.reference or {}).get("spec") or {}
        return {"numeric": spec.get("numeric", []), "categorical": spec.get("categorical", []),
                "score": spec.get("score"), "groups": [g["column"] for g in spec.get("groups", [])],
                "timestamp": obj.timestamp_column, "prediction_id": obj.prediction_id_column}

    def get_policy(self, obj) -> dict:
        v = plan_version_current(obj)
        return {"version": v.version, "digest": v.digest, "origin": iso_utc(v.origin), "document": v.policy}

    def get_health(self, obj) -> dict:
        return plan_health(obj)


class WindowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    state = serializers.CharField()
    rows = serializers.IntegerField()
    labelled = serializers.IntegerField()
    batches = serializers.IntegerField()
    verdict = serializers.CharField()
    aggregate_digest = serializers.CharField()
    evaluation_digest = serializers.CharField()
    ledger_seq = serializers.IntegerField(allow_null=True)
    evaluation = serializers.JSONField(allow_null=True, help_text="custos.monitoring.evaluation/1, once closed.")


class BatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    digest = serializers.CharField()
    source = serializers.CharField()
    file_format = serializers.CharField()
    rows_read = serializers.IntegerField()
    rows_accepted = serializers.IntegerField()
    rejected = serializers.DictField(child=serializers.IntegerField())
    windows = serializers.ListField(child=serializers.CharField())
    ignored_columns = serializers.ListField(child=serializers.CharField())
    join_records = serializers.IntegerField()
    duplicate_ids = serializers.IntegerField()
    duplicate = serializers.BooleanField(help_text="True when these bytes were ingested before (nothing changed).")
    created_at = serializers.DateTimeField()


class FindingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    plan_id = serializers.IntegerField()
    window_start = serializers.DateTimeField(source="window.start")
    statistic = serializers.CharField()
    column = serializers.CharField()
    verdict = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    summary = serializers.JSONField(help_text="The figure: value, limits, n, reason, interval.")
    state = serializers.CharField()
    created_at = serializers.DateTimeField()
    incident = serializers.SerializerMethodField()

    def get_incident(self, obj) -> dict | None:
        incident = getattr(obj, "incident", None)
        if incident is None:
            return None
        return {"id": incident.pk, "category": incident.category, "aware_at": incident.aware_at,
                "deadline": incident.deadline, "reported_at": incident.reported_at}


def _batch(batch, created):
    batch.duplicate = not created
    return Response(BatchSerializer(batch).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class FindingListView(APIView):
    """Findings of the caller's business units (newest first), with their incident if any."""

    pagination_class = Pagination  # the schema documents the list as the paginated page it is

    @extend_schema(
        operation_id="monitoring_findings_list",
        parameters=[OpenApiParameter("state", str, required=False, enum=[c for c, _ in Finding.State.choices])],
        responses={200: FindingSerializer(many=True), **problem_responses(400)},
    )
    def get(self, request):
        qs = findings_for(request.user).select_related("incident").order_by("-created_at", "-pk")
        state = request.query_params.get("state")
        if state is not None:
            if state not in Finding.State.values:
                raise exceptions.ValidationError({"state": [f"One of {', '.join(Finding.State.values)}."]})
            qs = qs.filter(state=state)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(FindingSerializer(page, many=True).data)


class PlanListView(APIView):
    """The monitoring plans of the caller's business units."""

    @extend_schema(operation_id="monitoring_plans_list", responses={200: PlanSerializer(many=True), **problem_responses()})
    def get(self, request):
        return Response(PlanSerializer(plans_for(request.user), many=True).data)


class PlanDetailView(APIView):
    """One plan: its reference, policy, the columns a batch needs, its health."""

    @extend_schema(operation_id="monitoring_plans_read", responses={200: PlanSerializer, **problem_responses(404)})
    def get(self, request, pk):
        return Response(PlanSerializer(_plan(request, pk)).data)


class WindowListView(APIView):
    """The plan's windows, oldest first, with their signed evaluations."""

    @extend_schema(operation_id="monitoring_windows_list", responses={200: WindowSerializer(many=True),
                                                                      **problem_responses(404)})
    def get(self, request, pk):
        return Response(WindowSerializer(windows_of(_plan(request, pk)), many=True).data)


class BatchView(UploadView):
    """Send a batch of production predictions (multipart field `file`: CSV, Parquet or JSON lines).

    The rows are streamed into the windows' counts and dropped; the same bytes again answer 200
    with the first outcome (`duplicate: true`). Rows outside the open windows are counted as
    rejected, not aggregated."""

    parser_classes = [MultiPartParser]
    upload_limit_setting = "CUSTOS_MONITORING_MAX_BATCH_BYTES"  # installed before a session's CSRF check

    class BatchInputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True)
        format = serializers.ChoiceField(FORMATS, required=False, help_text="Default: from the file name (else csv).")

    @extend_schema(
        operation_id="monitoring_batches_ingest",
        request={"multipart/form-data": BatchInputSerializer},
        responses={201: BatchSerializer, 200: OpenApiResponse(BatchSerializer, description="Duplicate batch"),
                   **problem_responses(400, 403, 404, 409, 413, 415)},
    )
    def post(self, request, pk):
        plan = _plan(request, pk)
        data = self.BatchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        name = upload.name.lower()
        fmt = data.validated_data.get("format") or (
            "parquet" if name.endswith((".parquet", ".pq")) else "jsonl" if name.endswith((".jsonl", ".ndjson")) else "csv")
        try:
            batch, created = batch_ingest(plan=plan, source=upload.temporary_file_path(), file_format=fmt,
                                          actor=request.user)
        finally:
            upload.close()  # the temporary file goes now: no production row outlives the request
        return _batch(batch, created)


class AggregateView(APIView):
    """Send one window aggregated at the edge (custos.monitoring.window/1 on the plan's reference)."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="monitoring_aggregates_ingest",
        request={"application/json": OpenApiTypes.OBJECT},
        description="The body is a custos.monitoring.window/1 document (docs/monitoring.md): counts on the "
        "reference's bins, every field present; labels are sent by prediction id, never pre-aggregated.",
        responses={201: BatchSerializer, 200: OpenApiResponse(BatchSerializer, description="Duplicate aggregate"),
                   **problem_responses(400, 403, 404, 409, 415)},
    )
    def post(self, request, pk):
        plan = _plan(request, pk)
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError("A custos.monitoring.window/1 object.")
        return _batch(*aggregate_ingest(plan=plan, document=request.data, actor=request.user))


class LabelsView(APIView):
    """Send labels of earlier predictions, by prediction id."""

    parser_classes = [JSONParser]

    class LabelSerializer(serializers.Serializer):
        prediction_id = serializers.CharField(max_length=200)
        label = serializers.JSONField()

    class LabelsInputSerializer(serializers.Serializer):
        labels = serializers.ListField(max_length=LABELS_PER_REQUEST, allow_empty=False)

    class LabelsOutputSerializer(serializers.Serializer):
        given = serializers.IntegerField()
        applied = serializers.IntegerField()
        unmatched = serializers.IntegerField(help_text="No prediction with that id (or purged after the label delay).")
        already_labelled = serializers.IntegerField()
        by_window = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(
        operation_id="monitoring_labels_record",
        request=LabelsInputSerializer,
        responses={200: LabelsOutputSerializer, **problem_responses(400, 403, 404, 409, 415)},
    )
    def post(self, request, pk):
        plan = _plan(request, pk)
        data = self.LabelsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = self.LabelSerializer(data=data.validated_data["labels"], many=True)
        items.is_valid(raise_exception=True)
        labels = {}
        for item in items.validated_data:
            if item["prediction_id"] in labels:
                raise exceptions.ValidationError({"labels": ["A prediction id appears more than once."]})
            labels[item["prediction_id"]] = item["label"]
        return Response(self.LabelsOutputSerializer(labels_record(plan=plan, labels=labels, actor=request.user)).data)


urlpatterns = [
    path("monitoring/plans", PlanListView.as_view(), name="monitoring-plans"),
    path("monitoring/plans/<int:pk>", PlanDetailView.as_view(), name="monitoring-plan"),
    path("monitoring/plans/<int:pk>/windows", WindowListView.as_view(), name="monitoring-windows"),
    path("monitoring/plans/<int:pk>/batches", BatchView.as_view(), name="monitoring-batches"),
    path("monitoring/plans/<int:pk>/aggregates", AggregateView.as_view(), name="monitoring-aggregates"),
    path("monitoring/plans/<int:pk>/labels", LabelsView.as_view(), name="monitoring-labels"),
    path("monitoring/findings", FindingListView.as_view(), name="monitoring-findings"),
]
