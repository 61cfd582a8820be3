"""Registry API: datasets and logged snapshots, code, models, versions, runs, subjects, lineage.

Views parse, call one service or selector, and render. Lists and details go through the
selectors, so another unit's objects are absent from lists and answer 404.
"""

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import TooLarge
from config.parsers import JSONParser

from ..models import DatasetVersion, MLModel, ModelVersion, RiskTier, AnnexIIICategory, TrainingRunInput
from ..selectors import lineage
from ..selectors.access import business_units_for
from ..selectors.registry import (
    code_versions_for,
    dataset_versions_for,
    datasets_for,
    model_versions_for,
    models_for,
    subject_holdings,
    training_runs_for,
)
from ..services import registry as services


SNAPSHOT_FORMATS = [("csv", "CSV"), ("parquet", "Parquet")]


def _check_content_length(request, limit):
    """Refuse an oversized upload before reading its body."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + 64 * 1024:  # room for the multipart envelope and the other fields
        raise TooLarge(f"The upload is larger than the limit of {limit} bytes.")


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Stream an uploaded file to a temporary file, stopping as soon as it passes the limit
    (a chunked request has no Content-Length to check beforehand)."""

    def __init__(self, request=None, *, limit):
        super().__init__(request)
        self.limit = limit
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            if self.file is not None:
                self.file.close()  # removes the temporary file now, not at the end of the request
            raise TooLarge(f"The upload is larger than the limit of {self.limit} bytes.")
        return super().receive_data_chunk(raw_data, start)


def _limit_upload(request, limit=None):
    """Refuse an oversized upload: by Content-Length before reading, else while streaming."""
    limit = settings.CUSTOS_MAX_UPLOAD_BYTES if limit is None else limit
    _check_content_length(request, limit)
    handlers = [LimitedUploadHandler(request._request, limit=limit)]
    # Both parsers read the body with these handlers: DRF's, and Django's own, which parses it
    # when the CSRF check of a session reads request.POST (before the view's method runs).
    request._request.upload_handlers = handlers
    request.upload_handlers = handlers


class UploadView(APIView):
    """A view whose POST carries a file: the upload limit is installed before authentication.

    SessionAuthentication's CSRF check reads ``request.POST``, so for a person's session Django
    parses the multipart body there, before the view's method runs; installed any later, the
    limit came too late (the body was parsed with Django's default handlers, unlimited, and the
    view found an in-memory file where it expects a temporary file: a 500)."""

    upload_limit_setting = "CUSTOS_MAX_UPLOAD_BYTES"

    def initial(self, request, *args, **kwargs):
        if request.method == "POST":
            _limit_upload(request, getattr(settings, self.upload_limit_setting))
        super().initial(request, *args, **kwargs)


def _writable_unit(request, slug):
    unit = business_units_for(request.user, write=True).filter(slug=slug).first()
    if unit is None:
        raise exceptions.ValidationError({"business_unit": [f"No business unit {slug!r} that you may register in."]})
    return unit


def _get(queryset, pk):
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise exceptions.NotFound()
    return obj


# --- serializers shared by several views -----------------------------------------------------


class DatasetVersionOutput(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset.name")
    business_unit = serializers.CharField(source="dataset.business_unit.slug")
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = DatasetVersion
        fields = [
            "id", "dataset", "dataset_id", "business_unit", "version", "storage", "file_format", "uri", "sha256",
            "size_bytes", "row_count", "schema", "subject_column", "personal_columns", "sensitive_columns",
            "created_by", "created_at",
        ]  # fmt: skip


class ModelVersionOutput(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    business_unit = serializers.CharField(source="model.business_unit.slug")
    training_run_id = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id", "model", "model_id", "business_unit", "version", "artifact_sha256", "artifact_format",
            "artifact_size", "framework", "framework_version", "feature_names", "description", "training_run_id",
            "created_at",
        ]  # fmt: skip

    def get_training_run_id(self, obj) -> int | None:
        run = getattr(obj, "training_run", None)
        return run.pk if run else None


class TrainingRunOutput(serializers.Serializer):
    class RunInputOutput(serializers.Serializer):
        dataset_version_id = serializers.IntegerField()
        sha256 = serializers.CharField(source="dataset_version.sha256")
        role = serializers.CharField()

    id = serializers.IntegerField()
    business_unit = serializers.CharField(source="business_unit.slug")
    name = serializers.CharField()
    external_run_id = serializers.CharField()
    source = serializers.CharField()
    state = serializers.CharField()
    code_version_id = serializers.IntegerField(allow_null=True)
    model_version_id = serializers.IntegerField(allow_null=True)
    inputs = RunInputOutput(many=True, source="inputs.all")
    parameters = serializers.JSONField()
    metrics = serializers.JSONField()
    library_versions = serializers.JSONField()
    seeds = serializers.JSONField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class LineageGraphOutput(serializers.Serializer):
    class LineageNodeOutput(serializers.Serializer):
        id = serializers.CharField()
        type = serializers.ChoiceField(["dataset_version", "training_run", "model_version", "code_version"])
        pk = serializers.IntegerField()
        label = serializers.CharField()

    class LineageEdgeOutput(serializers.Serializer):
        source = serializers.CharField()
        target = serializers.CharField()
        label = serializers.CharField()

    root = serializers.CharField()
    nodes = serializers.ListField(child=serializers.DictField(), help_text="NodeOutput plus type-specific fields.")
    edges = LineageEdgeOutput(many=True)
    truncated = serializers.BooleanField()


# --- datasets --------------------------------------------------------------------------------


class DatasetListCreateView(generics.ListAPIView):
    """List the datasets you may see; create one in a unit you may register in."""

    class DatasetListCreateOutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        business_unit = serializers.CharField(source="business_unit.slug")
        name = serializers.CharField()
        description = serializers.CharField()
        created_at = serializers.DateTimeField()

    class DatasetListCreateInputSerializer(serializers.Serializer):
        business_unit = serializers.SlugField()
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    serializer_class = DatasetListCreateOutputSerializer

    def get_queryset(self):
        return datasets_for(self.request.user).order_by("pk")

    @extend_schema(request=DatasetListCreateInputSerializer, responses={201: DatasetListCreateOutputSerializer})
    def post(self, request):
        data = self.DatasetListCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        unit = _writable_unit(request, data.validated_data["business_unit"])
        dataset = services.dataset_create(
            business_unit=unit,
            name=data.validated_data["name"],
            description=data.validated_data["description"],
            actor=request.user,
        )
        return Response(self.DatasetListCreateOutputSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetVersionUploadView(UploadView):
    """Upload a snapshot (CSV or Parquet, multipart field `file`); it is stored encrypted."""

    parser_classes = [MultiPartParser]

    class DatasetVersionUploadInputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True)
        version = serializers.CharField(max_length=100)
        format = serializers.ChoiceField(SNAPSHOT_FORMATS, required=False, help_text="Default: from the file name.")
        subject_column = serializers.CharField(required=False, allow_blank=True, default="")
        personal_columns = serializers.ListField(child=serializers.CharField(), required=False, default=list)
        sensitive_columns = serializers.ListField(child=serializers.CharField(), required=False, default=list)

    @extend_schema(
        request={"multipart/form-data": DatasetVersionUploadInputSerializer},
        responses={201: DatasetVersionOutput, 409: OpenApiResponse(description="Version exists"), 413: OpenApiResponse(description="Too large")},
    )
    def post(self, request, pk):
        dataset = _get(datasets_for(request.user), pk)
        data = self.DatasetVersionUploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        upload = v["file"]
        fmt = v.get("format") or ("parquet" if upload.name.lower().endswith((".parquet", ".pq")) else "csv")
        dv = services.dataset_version_upload(
            dataset=dataset,
            version=v["version"],
            file=upload.temporary_file_path(),
            file_format=fmt,
            subject_column=v["subject_column"],
            personal_columns=_split(v["personal_columns"]),
            sensitive_columns=_split(v["sensitive_columns"]),
            actor=request.user,
        )
        return Response(DatasetVersionOutput(dv).data, status=status.HTTP_201_CREATED)


def _split(values):
    """Accept repeated form fields or one comma-separated field."""
    out = []
    for value in values:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


class DatasetVersionReferenceView(APIView):
    """Register a snapshot kept elsewhere by URI and declared SHA-256."""

    parser_classes = [JSONParser]

    class DatasetVersionReferenceInputSerializer(serializers.Serializer):
        version = serializers.CharField(max_length=100)
        uri = serializers.CharField(max_length=1000)
        sha256 = serializers.CharField(max_length=64, min_length=64)
        format = serializers.ChoiceField(SNAPSHOT_FORMATS, required=False, allow_blank=True, default="")
        row_count = serializers.IntegerField(required=False, allow_null=True, min_value=0)
        size_bytes = serializers.IntegerField(required=False, allow_null=True, min_value=0)
        schema = serializers.ListField(child=serializers.DictField(), required=False, default=list)
        subject_column = serializers.CharField(required=False, allow_blank=True, default="")
        personal_columns = serializers.ListField(child=serializers.CharField(), required=False, default=list)
        sensitive_columns = serializers.ListField(child=serializers.CharField(), required=False, default=list)

    @extend_schema(request=DatasetVersionReferenceInputSerializer, responses={201: DatasetVersionOutput})
    def post(self, request, pk):
        dataset = _get(datasets_for(request.user), pk)
        data = self.DatasetVersionReferenceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        dv = services.dataset_version_reference(
            dataset=dataset,
            version=v["version"],
            uri=v["uri"],
            sha256=v["sha256"],
            file_format=v["format"],
            row_count=v.get("row_count"),
            size_bytes=v.get("size_bytes"),
            schema=v["schema"],
            subject_column=v["subject_column"],
            personal_columns=v["personal_columns"],
            sensitive_columns=v["sensitive_columns"],
            actor=request.user,
        )
        return Response(DatasetVersionOutput(dv).data, status=status.HTTP_201_CREATED)


class DatasetVersionListView(generics.ListAPIView):
    """List the dataset versions you may see."""

    serializer_class = DatasetVersionOutput

    def get_queryset(self):
        return dataset_versions_for(self.request.user).select_related("created_by").order_by("pk")


class DatasetVersionDetailView(generics.RetrieveAPIView):
    """One dataset version."""

    serializer_class = DatasetVersionOutput

    def get_queryset(self):
        return dataset_versions_for(self.request.user).select_related("created_by")


class DatasetVersionLineageView(APIView):
    """Downstream lineage of a dataset version: the runs that read it and what they produced."""

    @extend_schema(responses=LineageGraphOutput)
    def get(self, request, pk):
        dv = _get(dataset_versions_for(request.user), pk)
        return Response(lineage.downstream(dv, user=request.user))


# --- code ------------------------------------------------------------------------------------


class CodeVersionListCreateView(generics.ListAPIView):
    """List code versions; register one (registering the same code again returns it, 200)."""

    class CodeVersionListCreateOutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        business_unit = serializers.CharField(source="business_unit.slug")
        repository_url = serializers.CharField()
        commit_sha = serializers.CharField()
        image_digest = serializers.CharField()
        created_at = serializers.DateTimeField()

    class CodeVersionListCreateInputSerializer(serializers.Serializer):
        business_unit = serializers.SlugField()
        repository_url = serializers.CharField(max_length=500)
        commit_sha = serializers.CharField(max_length=64)
        image_digest = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    serializer_class = CodeVersionListCreateOutputSerializer

    def get_queryset(self):
        return code_versions_for(self.request.user).order_by("pk")

    @extend_schema(request=CodeVersionListCreateInputSerializer, responses={201: CodeVersionListCreateOutputSerializer, 200: CodeVersionListCreateOutputSerializer})
    def post(self, request):
        data = self.CodeVersionListCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        unit = _writable_unit(request, v["business_unit"])
        code, created = services.code_version_register(
            business_unit=unit,
            repository_url=v["repository_url"],
            commit_sha=v["commit_sha"],
            image_digest=v["image_digest"],
            actor=request.user,
        )
        return Response(self.CodeVersionListCreateOutputSerializer(code).data, status=201 if created else 200)


# --- models ----------------------------------------------------------------------------------


class ModelOutput(serializers.ModelSerializer):
    business_unit = serializers.CharField(source="business_unit.slug")
    owner = serializers.CharField(source="owner.username", default=None, allow_null=True)

    class Meta:
        model = MLModel
        fields = ["id", "business_unit", "name", "owner", "intended_purpose", "risk_tier", "annex_iii_category", "created_at"]


class ModelListCreateView(generics.ListAPIView):
    """List the models you may see; create one with its EU AI Act classification."""

    class ModelListCreateInputSerializer(serializers.Serializer):
        business_unit = serializers.SlugField()
        name = serializers.CharField(max_length=200)
        intended_purpose = serializers.CharField()
        risk_tier = serializers.ChoiceField(RiskTier.choices)
        annex_iii_category = serializers.ChoiceField(AnnexIIICategory.choices, required=False, default="")

    serializer_class = ModelOutput

    def get_queryset(self):
        return models_for(self.request.user).order_by("pk")

    @extend_schema(request=ModelListCreateInputSerializer, responses={201: ModelOutput})
    def post(self, request):
        data = self.ModelListCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        unit = _writable_unit(request, v["business_unit"])
        model = services.model_create(
            business_unit=unit,
            name=v["name"],
            intended_purpose=v["intended_purpose"],
            risk_tier=v["risk_tier"],
            annex_iii_category=v["annex_iii_category"],
            actor=request.user,
        )
        return Response(ModelOutput(model).data, status=status.HTTP_201_CREATED)


class ModelDetailView(generics.RetrieveAPIView):
    """One model."""

    serializer_class = ModelOutput

    def get_queryset(self):
        return models_for(self.request.user)


class ModelVersionUploadView(UploadView):
    """Upload a model artifact (multipart field `artifact`); it is loaded safely before it is kept."""

    parser_classes = [MultiPartParser]
    upload_limit_setting = "CUSTOS_MAX_ARTIFACT_BYTES"  # an artifact is loaded in memory

    class ModelVersionUploadInputSerializer(serializers.Serializer):
        artifact = serializers.FileField(allow_empty_file=True)
        version = serializers.CharField(max_length=100)
        format = serializers.ChoiceField(ModelVersion.Format.choices)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(request={"multipart/form-data": ModelVersionUploadInputSerializer}, responses={201: ModelVersionOutput})
    def post(self, request, pk):
        model = _get(models_for(request.user), pk)
        data = self.ModelVersionUploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        upload = v["artifact"]
        mv = services.model_version_register(
            model=model,
            version=v["version"],
            artifact=upload.read(),
            artifact_format=v["format"],
            description=v["description"],
            actor=request.user,
        )
        return Response(ModelVersionOutput(mv).data, status=status.HTTP_201_CREATED)


class ModelVersionListView(generics.ListAPIView):
    """List the model versions you may see (filter by ?artifact_sha256=)."""

    serializer_class = ModelVersionOutput

    def get_queryset(self):
        qs = model_versions_for(self.request.user).select_related("training_run").order_by("pk")
        digest = self.request.query_params.get("artifact_sha256")
        return qs.filter(artifact_sha256=digest.lower()) if digest else qs


class ModelVersionDetailView(generics.RetrieveAPIView):
    """One model version."""

    serializer_class = ModelVersionOutput

    def get_queryset(self):
        return model_versions_for(self.request.user).select_related("training_run")


class ModelVersionLineageView(APIView):
    """Upstream lineage of a model version: its training run, code and dataset versions."""

    @extend_schema(responses=LineageGraphOutput)
    def get(self, request, pk):
        mv = _get(model_versions_for(request.user), pk)
        return Response(lineage.upstream(mv, user=request.user))


# --- training runs ---------------------------------------------------------------------------


class TrainingRunListCreateView(generics.ListAPIView):
    """List training runs; register a completed run with its inputs, code and model version."""

    class TrainingRunListCreateInputSerializer(serializers.Serializer):
        class RunInputSerializer(serializers.Serializer):
            dataset_version = serializers.IntegerField()
            role = serializers.ChoiceField(TrainingRunInput.Role.choices)

        business_unit = serializers.SlugField()
        inputs = RunInputSerializer(many=True, allow_empty=False)
        model_version = serializers.IntegerField(required=False, allow_null=True)
        code_version = serializers.IntegerField(required=False, allow_null=True)
        name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        external_run_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        parameters = serializers.DictField(required=False, default=dict)
        metrics = serializers.DictField(required=False, default=dict)
        library_versions = serializers.DictField(required=False, default=dict)
        seeds = serializers.DictField(required=False, default=dict)
        started_at = serializers.DateTimeField(required=False, allow_null=True)
        ended_at = serializers.DateTimeField(required=False, allow_null=True)

    serializer_class = TrainingRunOutput

    def get_queryset(self):
        return training_runs_for(self.request.user).order_by("pk")

    @extend_schema(request=TrainingRunListCreateInputSerializer, responses={201: TrainingRunOutput})
    def post(self, request):
        data = self.TrainingRunListCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        unit = _writable_unit(request, v["business_unit"])
        user = request.user

        def lookup(queryset, pk, field):
            obj = queryset.filter(pk=pk).first()
            if obj is None:
                raise exceptions.ValidationError({field: [f"No object {pk} that you may see."]})
            return obj

        inputs = [(lookup(dataset_versions_for(user), i["dataset_version"], "inputs"), i["role"]) for i in v["inputs"]]
        mv = lookup(model_versions_for(user), v["model_version"], "model_version") if v.get("model_version") else None
        code = lookup(code_versions_for(user), v["code_version"], "code_version") if v.get("code_version") else None
        run = services.training_run_register(
            business_unit=unit,
            inputs=inputs,
            model_version=mv,
            code_version=code,
            name=v["name"],
            external_run_id=v["external_run_id"],
            parameters=v["parameters"],
            metrics=v["metrics"],
            library_versions=v["library_versions"],
            seeds=v["seeds"],
            started_at=v.get("started_at"),
            ended_at=v.get("ended_at"),
            actor=user,
        )
        return Response(TrainingRunOutput(run).data, status=status.HTTP_201_CREATED)


class TrainingRunDetailView(generics.RetrieveAPIView):
    """One training run."""

    serializer_class = TrainingRunOutput

    def get_queryset(self):
        return training_runs_for(self.request.user)


# --- subjects --------------------------------------------------------------------------------


class SubjectLookupView(APIView):
    """Find one data subject in every logged snapshot (index lookup by keyed hash), and the
    runs and model versions downstream. POST keeps the subject id out of URLs and logs."""

    parser_classes = [JSONParser]

    class SubjectLookupInputSerializer(serializers.Serializer):
        subject_id = serializers.CharField(max_length=500)

    @extend_schema(
        request=SubjectLookupInputSerializer,
        responses=inline_serializer(
            "SubjectHoldings",
            {
                "subject_key": serializers.CharField(),
                "dataset_versions": inline_serializer(
                    "SubjectDatasetVersion",
                    {"id": serializers.IntegerField(), "dataset": serializers.CharField(), "version": serializers.CharField(),
                     "sha256": serializers.CharField(), "rows": serializers.IntegerField()},
                    many=True,
                ),
                "training_runs": serializers.ListField(child=serializers.IntegerField()),
                "model_versions": ModelVersionOutput(many=True),
            },
        ),
    )
    def post(self, request):
        if not request.user.has_perm("governance.view_subjectindexentry"):
            raise exceptions.PermissionDenied("Your role may not look up data subjects.")
        data = self.SubjectLookupInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        found = subject_holdings(subject_id=data.validated_data["subject_id"], user=request.user)
        return Response(
            {
                "subject_key": found["subject_key"],
                "dataset_versions": [
                    {"id": dv.pk, "dataset": dv.dataset.name, "version": dv.version, "sha256": dv.sha256, "rows": rows}
                    for dv, rows in found["dataset_versions"]
                ],
                "training_runs": [r.pk for r in found["training_runs"]],
                "model_versions": ModelVersionOutput(found["model_versions"], many=True).data,
            }
        )
