"""``POST /api/v1/lineage``: OpenLineage events, at the path Marquez serves, so pipelines
instrumented for OpenLineage (Airflow, Spark, dbt, the Python client) report to Custos."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.parsers import JSONParser

from ..selectors.access import business_units_for
from ..services.openlineage import openlineage_event_ingest


def event_unit(user, namespace):
    """The business unit of an event: the one named by its namespace, else the caller's only unit."""
    units = business_units_for(user, write=True)
    unit = units.filter(slug=namespace).first() if namespace else None
    if unit is not None:
        return unit
    if units.count() == 1:
        return units.get()
    raise exceptions.ValidationError(
        {"job.namespace": ["Cannot tell which business unit this event belongs to: use the unit's slug as namespace."]}
    )


ACCEPTED = inline_serializer("OpenLineageAccepted",
                             {"id": serializers.IntegerField(), "created": serializers.BooleanField()})


class OpenLineageView(APIView):
    """Accept one OpenLineage RunEvent, DatasetEvent or JobEvent (spec 2-0-x)."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=inline_serializer("OpenLineageEvent", {"eventTime": serializers.DateTimeField()}),
        responses={
            201: ACCEPTED,
            200: OpenApiResponse(response=ACCEPTED, description="Already received (idempotent re-send)."),
            409: OpenApiResponse(description="Same runId and event type with another body."),
        },
    )
    def post(self, request):
        body = request.data
        namespace = ""
        if isinstance(body, dict):
            scope = body.get("job") or body.get("dataset") or {}
            namespace = scope.get("namespace", "") if isinstance(scope, dict) else ""
        unit = event_unit(request.user, namespace if isinstance(namespace, str) else "")
        record, created = openlineage_event_ingest(unit=unit, body=body, actor=request.user)
        return Response(
            {"id": record.pk, "created": created},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
