"""Release API for pipelines and people: request a release, read it, decide, revoke, ask its status.

Views parse, call one service or selector, and render. Refused transitions are 409, refused
decisions 403, another unit's release is 404. POSTs honour ``Idempotency-Key``.
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import Pagination
from config.idempotency.api import IDEMPOTENCY_PARAMETER, idempotent

from ..models.releases import Environment
from ..rules.limits import JUSTIFICATION_MIN_LENGTH
from ..rules.releases import Decision
from ..selectors.releases import (
    model_version_find, model_version_get, release_get, release_list, release_status, status_fact_names,
)
from ..services.releases import release_decide, release_request, release_revoke


# --- output -----------------------------------------------------------------------------------


# Who reads the approval records behind a release (their written justifications): not the
# Pipeline role, which reads releases and attestations (the attestation carries only the hash).
READ_APPROVALS_PERM = "governance.view_approval"


class ReleaseApprovalSerializer(serializers.Serializer):
    approver = serializers.CharField(source="approver.username")
    role = serializers.CharField()
    decision = serializers.CharField()
    justification = serializers.CharField(
        required=False, help_text="The approver's written reason; absent for callers without "
        "`governance.view_approval` (pipelines).")
    decided_at = serializers.DateTimeField()
    ledger_seq = serializers.IntegerField()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("reads_approvals", False):
            data.pop("justification", None)
        return data


def _context(request) -> dict:
    return {"reads_approvals": request.user.has_perm(READ_APPROVALS_PERM)}


class ReleaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="model.name")
    business_unit = serializers.CharField(source="model.business_unit.slug")
    model_version_id = serializers.IntegerField()
    version = serializers.CharField(source="model_version.version")
    artifact_sha256 = serializers.CharField(source="model_version.artifact_sha256")
    environment = serializers.CharField()
    state = serializers.CharField()
    requester = serializers.CharField(source="requester.username")
    approval_policy = serializers.SerializerMethodField()
    gate = serializers.SerializerMethodField()
    approvals = ReleaseApprovalSerializer(many=True, source="approvals.all")
    revocation_justification = serializers.CharField(source="justification")
    superseded_by = serializers.IntegerField(source="superseded_by_id", allow_null=True)
    attestation = serializers.JSONField(allow_null=True, help_text="DSSE envelope, once approved.")
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)

    def get_approval_policy(self, obj) -> dict:
        p = obj.approval_policy
        return {"id": p.pk, "risk_tier": p.risk_tier, "environment": p.environment, "version": p.version,
                "digest": p.digest, "rule": p.rule}

    def get_gate(self, obj) -> dict:
        return {"run": obj.gate_run.ledger_subject if obj.gate_run_id else None, "verdict": obj.gate_verdict or None,
                "ledger_seq": obj.gate_ledger_seq}


# --- views ------------------------------------------------------------------------------------


class ReleaseListView(APIView):
    """Release requests of the caller's business units (newest first), and asking for a new one."""

    pagination_class = Pagination  # the schema documents the list as the paginated page it is
    problem_codes = (404, 422)  # no such model version; an Idempotency-Key reused for another request

    class ReleaseRequestInputSerializer(serializers.Serializer):
        model_version = serializers.IntegerField(required=False, min_value=1,
                                                 help_text="Id of the model version (or give `model` and `version`).")
        model = serializers.CharField(required=False,
                                      help_text="Model name (with `version`, instead of `model_version`).")
        version = serializers.CharField(required=False)
        business_unit = serializers.SlugField(required=False, help_text="Unit slug, if the model name is ambiguous.")
        environment = serializers.ChoiceField(choices=Environment.values)

        def validate(self, data):
            if "model_version" not in data and not ("model" in data and "version" in data):
                raise serializers.ValidationError("Give `model_version`, or `model` and `version`.")
            return data

    @extend_schema(
        operation_id="releases_list",
        parameters=[
            OpenApiParameter("state", str, required=False),
            OpenApiParameter("environment", str, required=False, enum=Environment.values),
        ],
        responses=ReleaseSerializer(many=True),
    )
    def get(self, request):
        qs = release_list(
            user=request.user, state=request.query_params.get("state"), environment=request.query_params.get("environment")
        ).prefetch_related("approvals__approver")
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ReleaseSerializer(page, many=True, context=_context(request)).data)

    @extend_schema(
        operation_id="releases_request",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=ReleaseRequestInputSerializer,
        examples=[
            OpenApiExample("By model name and version", request_only=True,
                           value={"model": "credit-scoring", "version": "1.4.0", "environment": "production"}),
            OpenApiExample("By model version id", request_only=True,
                           value={"model_version": 7, "environment": "staging"}),
        ],
        responses={201: ReleaseSerializer, 409: OpenApiResponse(description="Already open or approved")},
    )
    def post(self, request):
        def act():
            data = self.ReleaseRequestInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            d = data.validated_data
            if "model_version" in d:
                mv = model_version_get(user=request.user, pk=d["model_version"])
            else:
                mv = model_version_find(
                    user=request.user, model=d["model"], version=d["version"], business_unit=d.get("business_unit")
                )
            release = release_request(model_version=mv, environment=d["environment"], actor=request.user)
            release = release_get(user=request.user, pk=release.pk)
            return Response(ReleaseSerializer(release, context=_context(request)).data, status=201)

        return idempotent(request, "releases.request", act)


class ReleaseDetailView(APIView):
    """One release request: state, gate evidence, decisions, attestation."""

    @extend_schema(operation_id="releases_read", responses=ReleaseSerializer)
    def get(self, request, pk):
        return Response(ReleaseSerializer(release_get(user=request.user, pk=pk), context=_context(request)).data)


class ReleaseDecisionView(APIView):
    """Approve, reject, or override an inconclusive gate, with a written justification."""

    problem_codes = (422,)  # an Idempotency-Key reused for another request

    class ReleaseDecisionInputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=[d.value for d in Decision])
        role = serializers.CharField(help_text="The role you act in, e.g. 'Model Risk Validator'.")
        justification = serializers.CharField(min_length=JUSTIFICATION_MIN_LENGTH)

    @extend_schema(
        operation_id="releases_decide",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=ReleaseDecisionInputSerializer,
        responses={200: ReleaseSerializer, 403: OpenApiResponse(description="Segregation of duties"),
                   409: OpenApiResponse(description="Not awaiting approval")},
    )
    def post(self, request, pk):
        def act():
            release = release_get(user=request.user, pk=pk)
            data = self.ReleaseDecisionInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            release_decide(release=release, actor=request.user, **data.validated_data)
            return Response(ReleaseSerializer(release_get(user=request.user, pk=pk), context=_context(request)).data)

        return idempotent(request, f"releases.decide:{pk}", act)


class ReleaseRevokeView(APIView):
    """Revoke an approved release, with a written justification."""

    problem_codes = (422,)  # an Idempotency-Key reused for another request

    class ReleaseRevokeInputSerializer(serializers.Serializer):
        justification = serializers.CharField(min_length=JUSTIFICATION_MIN_LENGTH)

    @extend_schema(
        operation_id="releases_revoke",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=ReleaseRevokeInputSerializer,
        responses={200: ReleaseSerializer, 409: OpenApiResponse(description="Not approved")},
    )
    def post(self, request, pk):
        def act():
            release = release_get(user=request.user, pk=pk)
            data = self.ReleaseRevokeInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            release_revoke(release=release, actor=request.user, **data.validated_data)
            return Response(ReleaseSerializer(release_get(user=request.user, pk=pk), context=_context(request)).data)

        return idempotent(request, f"releases.revoke:{pk}", act)


class ReleaseAttestationView(APIView):
    """The signed attestation of an approved release, as a bare DSSE envelope (save it to a file)."""

    @extend_schema(operation_id="releases_attestation",
                   responses={200: OpenApiResponse(response=OpenApiTypes.OBJECT, description="DSSE envelope")})
    def get(self, request, pk):
        release = release_get(user=request.user, pk=pk)
        if not release.attestation:
            raise Http404("This release has no attestation (it was never approved).")
        return Response(release.attestation)


class ReleaseStatusView(APIView):
    """Is this exact model version approved for this environment? With the attestation if so."""

    problem_codes = (404,)  # no such model version in the caller's units

    class ReleaseStatusSerializer(serializers.Serializer):
        approved = serializers.BooleanField()
        state = serializers.CharField(allow_null=True, help_text="State of the latest request, if any.")
        release_id = serializers.IntegerField(allow_null=True)
        model = serializers.CharField()
        version = serializers.CharField()
        business_unit = serializers.CharField()
        environment = serializers.CharField()
        artifact_sha256 = serializers.CharField()
        attestation = serializers.JSONField(allow_null=True, help_text="DSSE envelope when approved.")
        facts = serializers.DictField(
            child=serializers.JSONField(allow_null=True),
            help_text="Registered facts, by name: `erasure_review` is {blocked, reason}, whether open erasure reviews "
            "(GDPR Art. 17) block approval; `monitoring` is the post-market "
            "monitoring health of the version in production ({status: ok | warn | alert | inconclusive | "
            "'no data since <time>' | 'no plan' | 'no reference', plan_id, open_findings, last_window}); null elsewhere.",
        )

    @extend_schema(
        operation_id="releases_status",
        parameters=[
            OpenApiParameter("model", str, required=True),
            OpenApiParameter("version", str, required=True),
            OpenApiParameter("environment", str, required=True, enum=Environment.values),
            OpenApiParameter("business_unit", str, required=False),
        ],
        responses=ReleaseStatusSerializer,
    )
    def get(self, request):
        q = request.query_params
        missing = [name for name in ("model", "version", "environment") if not q.get(name)]
        if missing:
            raise exceptions.ValidationError({name: ["This parameter is required."] for name in missing})
        if q["environment"] not in Environment.values:
            raise exceptions.ValidationError({"environment": [f"One of {', '.join(Environment.values)}."]})
        found = release_status(
            user=request.user, model=q["model"], version=q["version"], environment=q["environment"],
            business_unit=q.get("business_unit"),
        )
        facts = {name: found.pop(name) for name in status_fact_names()}
        return Response(self.ReleaseStatusSerializer({**found, "environment": q["environment"], "facts": facts}).data)
