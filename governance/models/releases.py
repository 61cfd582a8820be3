"""Release requests, the decisions on them, and the approval policies they follow.

The rules (which transitions, which decisions) live in ``governance.rules.releases``; the only code
that writes these rows is ``governance.services.releases``, which ledgers every change.
"""

from django.conf import settings
from django.db import models

from ..rules.releases import OPEN_STATES, Decision, Verdict, State
from .base import GovernedModel
from .registry import RiskTier


class Environment(models.TextChoices):
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


class ApprovalPolicy(GovernedModel):
    """Who must approve releases of one risk tier to one environment; a change is a new version."""

    institution_wide = True  # institution-wide, per risk tier and environment

    risk_tier = models.CharField(max_length=12, choices=RiskTier.choices)
    environment = models.CharField(max_length=12, choices=Environment.choices)
    version = models.PositiveIntegerField()
    rule = models.JSONField(help_text="governance.rules.releases.ApprovalRule as JSON.")
    digest = models.CharField(max_length=64, help_text="SHA-256 (hex) of the rule's RFC 8785 JSON.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["risk_tier", "environment", "-version"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.UniqueConstraint(fields=["risk_tier", "environment", "version"], name="approvalpolicy_unique_version"),
        ]

    def __str__(self):
        return f"{self.risk_tier} → {self.environment} v{self.version}"


class ReleaseRequest(GovernedModel):
    """A request to release one model version to one environment, and where it stands."""

    unit_path = "model__business_unit"

    model = models.ForeignKey("governance.MLModel", on_delete=models.PROTECT, related_name="release_requests")
    model_version = models.ForeignKey(
        "governance.ModelVersion", on_delete=models.PROTECT, related_name="release_requests"
    )
    environment = models.CharField(max_length=12, choices=Environment.choices)
    state = models.CharField(max_length=20, choices=[(s.value, s.value.replace("_", " ")) for s in State])
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="release_requests")
    approval_policy = models.ForeignKey(ApprovalPolicy, on_delete=models.PROTECT, related_name="release_requests")
    # The gate evidence: which gate run decided, its verdict, and the ledger entry of that verdict.
    gate_run = models.ForeignKey(
        "governance.GateRun", null=True, blank=True, on_delete=models.PROTECT, related_name="release_requests"
    )
    gate_verdict = models.CharField(max_length=14, blank=True, choices=[(v.value, v.value.replace("_", " ")) for v in Verdict])
    gate_ledger_seq = models.BigIntegerField(null=True, blank=True)
    gate_details = models.JSONField(default=dict, blank=True, help_text="Gate run summary shown to reviewers.")
    justification = models.TextField(blank=True, help_text="Why it was revoked (for revoked releases).")
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="supersedes"
    )
    attestation = models.JSONField(null=True, blank=True, help_text="DSSE envelope issued on approval.")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When it was revoked or superseded.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one request on its way per model version and environment …
            models.UniqueConstraint(
                fields=["model_version", "environment"],
                condition=models.Q(state__in=sorted(s.value for s in OPEN_STATES)),
                name="releaserequest_one_open_per_version_env",
            ),
            # … and one approved version per model and environment (a newer one supersedes).
            models.UniqueConstraint(
                fields=["model", "environment"],
                condition=models.Q(state=State.APPROVED.value),
                name="releaserequest_one_approved_per_model_env",
            ),
        ]
        permissions = [
            ("decide_releaserequest", "Can approve or reject release requests"),
            ("revoke_releaserequest", "Can revoke approved releases"),
        ]

    def __str__(self):
        return f"release {self.pk}: {self.model_version} → {self.environment} ({self.state})"

    @property
    def business_unit(self):
        return self.model.business_unit


class Approval(models.Model):
    """One decision on a release request: approve, reject, or override an inconclusive gate."""

    release = models.ForeignKey(ReleaseRequest, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=60, help_text="The role the approver acted in.")
    decision = models.CharField(max_length=10, choices=[(d.value, d.value) for d in Decision])
    justification = models.TextField()
    decided_at = models.DateTimeField(auto_now_add=True)
    ledger_seq = models.BigIntegerField(help_text="Sequence number of this decision's ledger entry.")

    class Meta:
        ordering = ["decided_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["release", "approver"],
                condition=~models.Q(decision=Decision.OVERRIDE.value),
                name="approval_one_decision_per_person",
            ),
        ]

    def __str__(self):
        return f"{self.decision} by {self.approver} as {self.role}"
