"""The Data Protection Officer's admin (requests by deadline, intake, plan, approval, execution)
and the Model Risk Validator's erasure reviews.

Pages read through ``selectors.erasure``; every write is a ``services.erasure`` function. The
intake form takes the data subject's id once, in a field that never redisplays; no page shows
the id or its keyed hash. Approving a plan and executing it (which destroys data keys) each
ask for confirmation first.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from config.errors import DomainError, refusal_text

from ..models import ErasureRequest, ErasureReview
from ..rules import erasure as rules
from ..selectors.erasure import erasure_request_get, erasure_request_list, review_get
from ..services import erasure as service
from .links import object_links


class IntakeForm(forms.Form):
    subject_id = forms.CharField(
        label="Data subject id", strip=False, max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Typed once. Custos keeps only its keyed hash (as the subject index computes it); "
        "it is never shown again.",
    )
    ground = forms.ChoiceField(choices=[(g.value, f"{g.article}: {g.wording}") for g in rules.Ground])
    received_at = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-01-31 09:00 (default: now).")


class VerifyForm(forms.Form):
    evidence_reference = forms.CharField(max_length=rules.EVIDENCE_REFERENCE_MAX_LENGTH,
                                         help_text="Where the identity evidence is kept (a ticket or file number).")


class ConfirmForm(forms.Form):
    plan_sha256 = forms.CharField(widget=forms.HiddenInput)
    confirm = forms.BooleanField(label="I have read the plan and confirm.")


@admin.register(ErasureRequest)
class ErasureRequestAdmin(admin.ModelAdmin):
    list_display = ["reference", "state", "ground", "received_at", "due_at", "overdue", "extension_months"]
    list_filter = ["state", "ground"]
    search_fields = ["reference"]

    def get_queryset(self, request):
        return erasure_request_list(user=request.user)

    def get_ordering(self, request):
        return []  # the selector's order: deadline running first, due first

    @admin.display(boolean=True)
    def overdue(self, obj):
        return rules.is_overdue(obj.state, obj.deadline, timezone.now())

    def has_add_permission(self, request):
        return request.user.has_perm("governance.add_erasurerequest")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<str:reference>/detail/", wrap(self.detail_view), name="governance_erasurerequest_detail"),
            path("<str:reference>/confirm/<str:step>/", wrap(self.confirm_view),
                 name="governance_erasurerequest_confirm"),
            *super().get_urls(),
        ]

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = IntakeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            try:
                created = service.erasure_request_record(subject_id=d["subject_id"], ground=d["ground"],
                                                         received_at=d["received_at"], actor=request.user)
            except (DomainError, ValidationError, PermissionDenied) as exc:
                messages.error(request, refusal_text(exc))
            else:
                messages.success(request, f"Erasure request {created.reference} is recorded; due "
                                          f"{created.due_at:%Y-%m-%dT%H:%M:%SZ}.")
                return redirect("admin:governance_erasurerequest_detail", reference=created.reference)
        return TemplateResponse(request, "admin/governance/erasurerequest/intake.html",
                                self._context(request, title="Record an erasure request", form=form))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = ErasureRequest.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        return redirect("admin:governance_erasurerequest_detail", reference=obj.reference if obj else object_id)

    def detail_view(self, request, reference):
        """A request with its deadline, plan, progress, reviews and recipient tasks, and its next steps."""
        erasure = erasure_request_get(user=request.user, reference=reference)
        verify_form = VerifyForm()
        if request.method == "POST":
            action = request.POST.get("action")
            try:
                if action == "verify":
                    verify_form = VerifyForm(request.POST)
                    if verify_form.is_valid():
                        service.erasure_identity_verify(request=erasure, actor=request.user, **verify_form.cleaned_data)
                        messages.success(request, "The identity verification is recorded.")
                        return redirect(request.path)
                elif action == "plan":
                    service.erasure_plan(request=erasure, actor=request.user)
                    messages.success(request, "The plan is recorded; a second officer approves it.")
                    return redirect(request.path)
                else:
                    messages.error(request, "Unknown action.")
            except (DomainError, ValidationError, PermissionDenied) as exc:
                messages.error(request, refusal_text(exc))
                return redirect(request.path)
        plan = erasure.approved_plan()
        user = request.user
        state = rules.State(erasure.state)
        allowed = set(rules.allowed_actions(state))
        context = self._context(
            request, title=f"Erasure request {erasure.reference}", erasure=erasure, plan=plan,
            deadline=erasure.deadline, overdue=self.overdue(erasure),
            snapshots=erasure.snapshots.all(), reviews=erasure.reviews.all(),
            recipient_tasks=erasure.recipient_tasks.all(), verify_form=verify_form,
            outstanding=service.erasure_outstanding(erasure) if state == rules.State.EXECUTING else (),
            may_verify=rules.Action.VERIFY_IDENTITY in allowed and user.has_perm("governance.verify_erasurerequest"),
            may_plan=rules.Action.PLAN in allowed and user.has_perm("governance.plan_erasurerequest"),
            may_approve=rules.Action.APPROVE_PLAN in allowed and user.has_perm("governance.approve_erasurerequest"),
            may_execute=bool(allowed & {rules.Action.START_EXECUTION, rules.Action.RESUME, rules.Action.COMPLETE_LIVE})
            and user.has_perm("governance.execute_erasurerequest"),
            object_links=object_links(erasure, user),
        )
        return TemplateResponse(request, "admin/governance/erasurerequest/detail.html", context)

    def confirm_view(self, request, reference, step):
        """Approve the plan or execute it, after a confirmation page that shows what will be destroyed."""
        if step not in ("approve", "execute"):
            raise PermissionDenied
        erasure = erasure_request_get(user=request.user, reference=reference)
        form = ConfirmForm(request.POST or None, initial={"plan_sha256": erasure.plan_sha256})
        if request.method == "POST" and form.is_valid():
            try:
                if step == "approve":
                    service.erasure_plan_approve(request=erasure, plan_sha256=form.cleaned_data["plan_sha256"],
                                                 actor=request.user)
                    messages.success(request, "The plan is approved.")
                else:
                    if form.cleaned_data["plan_sha256"] != erasure.plan_sha256:
                        raise service.ErasureConflict("The plan changed since you read it; read it again.")
                    service.erasure_execute(request=erasure, actor=request.user)
                    messages.success(request, "The execution is queued on a worker.")
            except (DomainError, ValidationError, PermissionDenied) as exc:
                messages.error(request, refusal_text(exc))
            return redirect("admin:governance_erasurerequest_detail", reference=reference)
        context = self._context(
            request, title=f"{'Approve the plan of' if step == 'approve' else 'Execute'} {erasure.reference}",
            erasure=erasure, plan=erasure.approved_plan(), form=form, step=step,
            back=reverse("admin:governance_erasurerequest_detail", kwargs={"reference": reference}),
        )
        return TemplateResponse(request, "admin/governance/erasurerequest/confirm.html", context)


class ReviewDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[(d.value, d.value) for d in rules.ReviewDecision],
                                 help_text="retrain: train a new version without the person; retain: keep it "
                                 "(e.g. an anonymity assessment); retire: revoke its releases.")
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80}))


@admin.register(ErasureReview)
class ErasureReviewAdmin(admin.ModelAdmin):
    """Model Risk Validators decide the erasure reviews of their units' model versions here."""

    list_display = ["id", "model_version", "request", "state", "decision", "opened_at"]
    list_filter = ["state", "decision"]
    list_select_related = ["model_version__model", "request"]

    def get_queryset(self, request):
        return ErasureReview.objects.for_user(request.user).select_related("model_version__model", "request")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("<int:pk>/decide/", wrap(self.decide_view), name="governance_erasurereview_decide"),
                *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect("admin:governance_erasurereview_decide", pk=object_id)

    def decide_view(self, request, pk):
        review = review_get(user=request.user, pk=pk)
        form = ReviewDecisionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                service.erasure_review_decide(review=review, actor=request.user, **form.cleaned_data)
            except (DomainError, ValidationError, PermissionDenied) as exc:
                messages.error(request, refusal_text(exc))
            else:
                messages.success(request, f"The erasure review of {review.model_version} is decided.")
            return redirect(request.path)
        may_decide = review.state == rules.ReviewState.OPEN and request.user.has_perm("governance.decide_erasurereview")
        context = self._context(request, review=review, form=form, may_decide=may_decide,
                                title=f"Erasure review of {review.model_version} ({review.request.reference})")
        return TemplateResponse(request, "admin/governance/erasurereview/decide.html", context)

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}
