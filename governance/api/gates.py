"""Release-gate API: submit a gate run, read runs and their results, publish and read policies.

Views parse, call one service or selector, and render. Runs of another unit are absent from
lists and answer 404; bad input known at submission is a 400 naming the problem.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import Pagination

from ..models import GateRun
from ..selectors.gates import gate_policies, gate_runs_for
from ..selectors.registry import dataset_versions_for, model_versions_for
from ..services import gates as services


def _get(queryset, pk):
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise exceptions.NotFound()
    return obj


class GatePolicyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    digest = serializers.CharField()
    document = serializers.JSONField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    created_at = serializers.DateTimeField()


class GateRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=GateRun.Status.choices)
    reason = serializers.CharField()
    model_version = serializers.IntegerField(source="model_version_id")
    artifact_sha256 = serializers.CharField(source="model_version.artifact_sha256")
    dataset_version = serializers.IntegerField(source="dataset_version_id")
    dataset_sha256 = serializers.CharField(source="dataset_version.sha256")
    policy = serializers.IntegerField(source="policy_id")
    policy_digest = serializers.CharField(source="policy.digest")
    label_column = serializers.CharField()
    positive_label = serializers.CharField()
    seed = serializers.IntegerField()
    baseline = serializers.IntegerField(source="baseline_id", allow_null=True)
    result_digest = serializers.CharField()
    submitted_by = serializers.CharField(source="submitted_by.username", default=None, allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class GateRunDetailOutput(GateRunOutput):
    result = serializers.JSONField(allow_null=True, help_text="Every figure, seed, sample index and version.")


class GateRunListCreateView(ListAPIView):
    """List the gate runs of your units, or submit one (it runs as a background task)."""

    class GateRunSubmitInputSerializer(serializers.Serializer):
        model_version = serializers.IntegerField()
        dataset_version = serializers.IntegerField(help_text="A logged evaluation snapshot stored by Custos.")
        label_column = serializers.CharField(max_length=200)
        positive_label = serializers.CharField(max_length=200)
        policy = serializers.IntegerField(required=False, help_text="Default: the policy assigned to the model.")
        seed = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)

    serializer_class = GateRunOutput
    pagination_class = Pagination

    def get_queryset(self):
        qs = gate_runs_for(self.request.user)
        params = self.request.query_params
        for field in ("model_version", "dataset_version", "status"):
            if params.get(field):
                qs = qs.filter(**{field: params[field]})
        return qs

    @extend_schema(parameters=[
        OpenApiParameter("model_version", int), OpenApiParameter("dataset_version", int),
        OpenApiParameter("status", str, enum=GateRun.Status.values),
    ])
    def get(self, request, *args, **kwargs):
        if request.query_params.get("status") and request.query_params["status"] not in GateRun.Status.values:
            raise exceptions.ValidationError({"status": [f"One of {', '.join(GateRun.Status.values)}."]})
        for field in ("model_version", "dataset_version"):
            value = request.query_params.get(field)
            # ASCII digits only and within a 64-bit id: "²" passes isdigit() but not int(), and a
            # 30-digit id overflowed the database driver (500).
            if value and not (value.isascii() and value.isdigit() and len(value) <= 18):
                raise exceptions.ValidationError({field: ["An integer id."]})
        return super().get(request, *args, **kwargs)

    @extend_schema(request=GateRunSubmitInputSerializer, responses={202: GateRunDetailOutput})
    def post(self, request):
        data = self.GateRunSubmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        model_version = model_versions_for(request.user).filter(pk=v["model_version"]).first()
        dataset_version = dataset_versions_for(request.user).filter(pk=v["dataset_version"]).first()
        errors = {}
        if model_version is None:
            errors["model_version"] = ["No such model version in your business units."]
        if dataset_version is None:
            errors["dataset_version"] = ["No such dataset version in your business units."]
        policy = None
        if "policy" in v:
            policy = gate_policies().filter(pk=v["policy"]).first()
            if policy is None:
                errors["policy"] = ["No such gate policy."]
        if errors:
            raise exceptions.ValidationError(errors)
        run = services.gate_run_submit(
            model_version=model_version,
            dataset_version=dataset_version,
            label_column=v["label_column"],
            positive_label=v["positive_label"],
            policy=policy,
            seed=v.get("seed"),
            actor=request.user,
        )
        run = gate_runs_for(request.user).get(pk=run.pk)  # eager runs have finished by now
        return Response(GateRunDetailOutput(run).data, status=status.HTTP_202_ACCEPTED)


class GateRunDetailView(APIView):
    """One gate run with its full result."""

    @extend_schema(responses=GateRunDetailOutput)
    def get(self, request, pk):
        return Response(GateRunDetailOutput(_get(gate_runs_for(request.user), pk)).data)


class GatePolicyListCreateView(ListAPIView):
    """Published gate policy versions; publish a new version (compliance officers)."""

    class GatePolicyPublishInputSerializer(serializers.Serializer):
        name = serializers.SlugField(max_length=100)
        document = serializers.JSONField(help_text="A custos.gate-policy/1 document.")

    serializer_class = GatePolicyOutput
    pagination_class = Pagination

    def get_queryset(self):
        qs = gate_policies()
        if self.request.query_params.get("name"):
            qs = qs.filter(name=self.request.query_params["name"])
        return qs

    @extend_schema(parameters=[OpenApiParameter("name", str)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=GatePolicyPublishInputSerializer, responses={201: GatePolicyOutput})
    def post(self, request):
        data = self.GatePolicyPublishInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not isinstance(data.validated_data["document"], dict):
            raise exceptions.ValidationError({"document": ["A JSON object."]})
        policy = services.gate_policy_publish(actor=request.user, **data.validated_data)
        return Response(GatePolicyOutput(policy).data, status=status.HTTP_201_CREATED)


class GatePolicyDetailView(APIView):
    """One published gate policy version."""

    @extend_schema(responses=GatePolicyOutput)
    def get(self, request, pk):
        return Response(GatePolicyOutput(_get(gate_policies(), pk)).data)
