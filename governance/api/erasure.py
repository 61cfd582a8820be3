"""Erasure request API (GDPR Art. 17) for a request-intake tool and the Data Protection Officer.

The data subject's id is accepted once, on intake (``subject_id``, write-only), and never
answered, echoed or stored: the service keeps its keyed hash only, and no answer carries that
either. Intake does not honour ``Idempotency-Key``: the idempotency record hashes the body,
and an unkeyed hash of a person's id is not to be stored; a repeated intake is answered 409
naming the open request instead. Views parse, call one service, render.
"""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import Pagination, problem_responses

from ..models import Dataset, DatasetVersion
from ..rules import erasure as rules
from ..selectors.erasure import (
    erasure_request_get,
    erasure_request_list,
    hold_target,
    legal_hold_get,
    legal_hold_list,
    recipient_task_get,
    review_get,
)
from ..services import erasure as service


class ErasureSnapshotSerializer(serializers.Serializer):
    predecessor_id = serializers.IntegerField()
    successor_id = serializers.IntegerField(allow_null=True)
    action = serializers.CharField()
    rows_to_remove = serializers.IntegerField()
    verification = serializers.CharField()
    successor_committed = serializers.BooleanField()
    predecessor_key_destroyed = serializers.BooleanField()
    key_destroyed_at = serializers.DateTimeField(allow_null=True)
    done = serializers.BooleanField()
    kept = serializers.BooleanField()
    note = serializers.CharField()


class ErasureReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model_version_id = serializers.IntegerField()
    state = serializers.CharField()
    decision = serializers.CharField()


class RecipientTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    dataset_version_id = serializers.IntegerField()
    storage = serializers.CharField()
    message = serializers.CharField()
    closed_at = serializers.DateTimeField(allow_null=True)


class ErasureRequestSerializer(serializers.Serializer):
    """An erasure request as officers see it: never the person's id nor its keyed hash."""

    reference = serializers.CharField()
    ground = serializers.CharField()
    state = serializers.CharField()
    received_at = serializers.DateTimeField()
    first_due_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    overdue = serializers.SerializerMethodField()
    extension_months = serializers.IntegerField()
    recorded_by = serializers.CharField(source="recorded_by.username", allow_null=True, default=None)
    verified_by = serializers.CharField(source="verified_by.username", allow_null=True, default=None)
    verified_at = serializers.DateTimeField(allow_null=True)
    evidence_reference = serializers.CharField()
    plan = serializers.JSONField(allow_null=True, help_text="The plan: snapshots, reviews, recipient tasks, counts.")
    plan_sha256 = serializers.CharField()
    planned_by = serializers.CharField(source="planned_by.username", allow_null=True, default=None)
    approved_by = serializers.CharField(source="approved_by.username", allow_null=True, default=None)
    outcome = serializers.CharField()
    error = serializers.CharField()
    absence_proof = serializers.JSONField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    snapshots = ErasureSnapshotSerializer(many=True, source="snapshots.all")
    reviews = ErasureReviewSerializer(many=True, source="reviews.all")
    recipient_tasks = RecipientTaskSerializer(many=True, source="recipient_tasks.all")

    def get_overdue(self, obj) -> bool:
        return rules.is_overdue(obj.state, obj.deadline, timezone.now())


def _answer(request, reference, status=200):
    return Response(ErasureRequestSerializer(erasure_request_get(user=request.user, reference=reference)).data,
                    status=status)


class ErasureRequestListView(APIView):
    """Erasure requests, deadline order (overdue first); and recording a new one."""

    class ErasureIntakeSerializer(serializers.Serializer):
        subject_id = serializers.CharField(write_only=True, max_length=500, trim_whitespace=False,
                                           help_text="The data subject's id, typed once; only its keyed hash is kept.")
        ground = serializers.ChoiceField(choices=[g.value for g in rules.Ground], help_text="Art. 17(1) point.")
        received_at = serializers.DateTimeField(required=False)

    @extend_schema(
        operation_id="erasure_requests_list",
        parameters=[OpenApiParameter("overdue", bool, required=False)],
        responses={200: ErasureRequestSerializer(many=True), **problem_responses(403)},
    )
    def get(self, request):
        overdue = request.query_params.get("overdue") in ("1", "true", "yes")
        qs = erasure_request_list(user=request.user, overdue=overdue).prefetch_related(
            "snapshots", "reviews", "recipient_tasks")
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ErasureRequestSerializer(page, many=True).data)

    @extend_schema(
        operation_id="erasure_requests_record",
        request=ErasureIntakeSerializer,
        responses={201: ErasureRequestSerializer, **problem_responses(400, 403, 409)},
    )
    def post(self, request):
        data = self.ErasureIntakeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        created = service.erasure_request_record(subject_id=d["subject_id"], ground=d["ground"],
                                                 received_at=d.get("received_at"), actor=request.user)
        return _answer(request, created.reference, status=201)


class ErasureRequestDetailView(APIView):
    @extend_schema(operation_id="erasure_requests_get",
                   responses={200: ErasureRequestSerializer, **problem_responses(403, 404)})
    def get(self, request, reference):
        return _answer(request, reference)


class _ActionView(APIView):
    """POST /erasure-requests/<reference>/<action>: one step of the workflow, answered with the request.

    Each subclass names its step in ``act(request, erasure, data)``, which calls one service."""

    input_serializer = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "act" not in vars(cls):
            raise TypeError(f"{cls.__name__} must say its workflow step in act()")

    def post(self, request, reference):
        erasure = erasure_request_get(user=request.user, reference=reference)
        data = {}
        if self.input_serializer is not None:
            parsed = self.input_serializer(data=request.data)
            parsed.is_valid(raise_exception=True)
            data = parsed.validated_data
        self.act(request, erasure, data)
        return _answer(request, reference)


_STEP_RESPONSES = {200: ErasureRequestSerializer, **problem_responses(400, 403, 404, 409)}


class ErasureVerifyView(_ActionView):
    class ErasureVerifyInput(serializers.Serializer):
        evidence_reference = serializers.CharField(max_length=rules.EVIDENCE_REFERENCE_MAX_LENGTH,
                                                   help_text="Where the identity evidence is kept (not the evidence).")
        verified_at = serializers.DateTimeField(required=False)

    input_serializer = ErasureVerifyInput

    @extend_schema(operation_id="erasure_requests_verify", request=ErasureVerifyInput, responses=_STEP_RESPONSES)
    def post(self, request, reference):
        return super().post(request, reference)

    def act(self, request, erasure, data):
        service.erasure_identity_verify(request=erasure, evidence_reference=data["evidence_reference"],
                                        verified_at=data.get("verified_at"), actor=request.user)


class ErasurePlanView(_ActionView):
    @extend_schema(operation_id="erasure_requests_plan", request=None, responses=_STEP_RESPONSES)
    def post(self, request, reference):
        return super().post(request, reference)

    def act(self, request, erasure, data):
        service.erasure_plan(request=erasure, actor=request.user)


class ErasureApproveView(_ActionView):
    class ErasureApproveInput(serializers.Serializer):
        plan_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", help_text="The SHA-256 of the plan you read.")

    input_serializer = ErasureApproveInput

    @extend_schema(operation_id="erasure_requests_approve", request=ErasureApproveInput, responses=_STEP_RESPONSES)
    def post(self, request, reference):
        return super().post(request, reference)

    def act(self, request, erasure, data):
        service.erasure_plan_approve(request=erasure, plan_sha256=data["plan_sha256"], actor=request.user)


class ErasureExecuteView(_ActionView):
    @extend_schema(operation_id="erasure_requests_execute", request=None, responses=_STEP_RESPONSES)
    def post(self, request, reference):
        return super().post(request, reference)

    def act(self, request, erasure, data):
        service.erasure_execute(request=erasure, actor=request.user)


class ErasureExtendView(_ActionView):
    class ErasureExtendInput(serializers.Serializer):
        months = serializers.IntegerField(min_value=1, max_value=rules.MAX_EXTENSION_MONTHS)
        reason = serializers.CharField()
        subject_notified_at = serializers.DateTimeField()

    input_serializer = ErasureExtendInput

    @extend_schema(operation_id="erasure_requests_extend", request=ErasureExtendInput, responses=_STEP_RESPONSES)
    def post(self, request, reference):
        return super().post(request, reference)

    def act(self, request, erasure, data):
        service.erasure_extend(request=erasure, months=data["months"], reason=data["reason"],
                               subject_notified_at=data["subject_notified_at"], actor=request.user)


class ErasureRefuseView(_ActionView):
    class ErasureRefuseInput(serializers.Serializer):
        ground = serializers.ChoiceField(choices=[g.value for g in rules.RefusalGround])
        reason = serializers.CharField()
        supervisory_authority = serializers.CharField(required=False, default="")

    input_serializer = ErasureRefuseInput

    @extend_schema(operation_id="erasure_requests_refuse", request=ErasureRefuseInput, responses=_STEP_RESPONSES)
    def post(self, request, reference):
        return super().post(request, reference)

    def act(self, request, erasure, data):
        service.erasure_refuse(request=erasure, ground=data["ground"], reason=data["reason"],
                               supervisory_authority=data["supervisory_authority"], actor=request.user)


# --- reviews, recipients, legal holds -----------------------------------------------------------


class ErasureReviewDecisionView(APIView):
    """POST /erasure-reviews/<id>/decision: a Model Risk Validator decides retrain, retain or retire."""

    class ErasureReviewDecisionInput(serializers.Serializer):
        decision = serializers.ChoiceField(choices=[d.value for d in rules.ReviewDecision])
        justification = serializers.CharField()

    @extend_schema(operation_id="erasure_reviews_decide", request=ErasureReviewDecisionInput,
                   responses={200: ErasureReviewSerializer, **problem_responses(400, 403, 404)})
    def post(self, request, pk):
        data = self.ErasureReviewDecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        review = service.erasure_review_decide(review=review_get(user=request.user, pk=pk), actor=request.user,
                                               **data.validated_data)
        return Response(ErasureReviewSerializer(review).data)


class RecipientTaskCloseView(APIView):
    """POST /erasure-recipient-tasks/<id>/close: the owner of an external copy says what they did."""

    class RecipientTaskCloseInput(serializers.Serializer):
        what_was_done = serializers.CharField()

    @extend_schema(operation_id="erasure_recipient_tasks_close", request=RecipientTaskCloseInput,
                   responses={200: RecipientTaskSerializer, **problem_responses(400, 403, 404, 409)})
    def post(self, request, pk):
        data = self.RecipientTaskCloseInput(data=request.data)
        data.is_valid(raise_exception=True)
        task = service.recipient_task_close(task=recipient_task_get(user=request.user, pk=pk), actor=request.user,
                                            **data.validated_data)
        return Response(RecipientTaskSerializer(task).data)


class LegalHoldSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.CharField()
    dataset_version_id = serializers.IntegerField(allow_null=True)
    dataset_id = serializers.IntegerField(allow_null=True)
    request = serializers.CharField(source="request.reference", allow_null=True, default=None)
    ground = serializers.CharField()
    justification = serializers.CharField()
    review_on = serializers.DateField()
    recorded_by = serializers.CharField(source="recorded_by.username", allow_null=True, default=None)
    confirmed_by = serializers.CharField(source="confirmed_by.username", allow_null=True, default=None)
    confirmed_at = serializers.DateTimeField(allow_null=True)
    released_at = serializers.DateTimeField(allow_null=True)


class LegalHoldListView(APIView):
    """Legal holds (GDPR Art. 17(3)); recording one (a second officer confirms it)."""

    class LegalHoldInput(serializers.Serializer):
        dataset_version = serializers.IntegerField(required=False)
        dataset = serializers.IntegerField(required=False)
        request = serializers.CharField(required=False, help_text="Limit the hold to this erasure request.")
        ground = serializers.ChoiceField(choices=[g.value for g in rules.ExceptionGround])
        justification = serializers.CharField()
        review_on = serializers.DateField()

    @extend_schema(operation_id="legal_holds_list",
                   responses={200: LegalHoldSerializer(many=True), **problem_responses(403)})
    def get(self, request):
        qs = legal_hold_list(user=request.user)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(LegalHoldSerializer(page, many=True).data)

    @extend_schema(operation_id="legal_holds_record", request=LegalHoldInput,
                   responses={201: LegalHoldSerializer, **problem_responses(400, 403, 404)})
    def post(self, request):
        data = self.LegalHoldInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        hold = service.legal_hold_record(
            ground=d["ground"], justification=d["justification"], review_on=d["review_on"],
            dataset_version=hold_target(DatasetVersion, d.get("dataset_version")),
            dataset=hold_target(Dataset, d.get("dataset")),
            request=erasure_request_get(user=request.user, reference=d["request"]) if d.get("request") else None,
            actor=request.user,
        )
        return Response(LegalHoldSerializer(hold).data, status=201)


class LegalHoldConfirmView(APIView):
    @extend_schema(operation_id="legal_holds_confirm", request=None,
                   responses={200: LegalHoldSerializer, **problem_responses(400, 403, 404)})
    def post(self, request, pk):
        hold = service.legal_hold_confirm(hold=legal_hold_get(user=request.user, pk=pk), actor=request.user)
        return Response(LegalHoldSerializer(hold).data)


class LegalHoldReleaseView(APIView):
    class LegalHoldReleaseInput(serializers.Serializer):
        reason = serializers.CharField()

    @extend_schema(operation_id="legal_holds_release", request=LegalHoldReleaseInput,
                   responses={200: LegalHoldSerializer, **problem_responses(400, 403, 404)})
    def post(self, request, pk):
        data = self.LegalHoldReleaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        hold = service.legal_hold_release(hold=legal_hold_get(user=request.user, pk=pk), actor=request.user,
                                          **data.validated_data)
        return Response(LegalHoldSerializer(hold).data)
