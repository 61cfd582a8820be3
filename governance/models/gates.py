"""Release gates: versioned gate policies, their assignment to risk tiers and models, and
gate runs with their full results.

Every row is written by a service in governance/services/gates.py, which ledgers it in the
same transaction. A published policy version never changes (a change is a new version); a
gate run's result, once written, changes only when a GDPR erasure removes a person's per-row
figures from it (services/erasure.py; its aggregates stay, the result records the redaction).
"""

from django.conf import settings
from django.db import models

from ..gates.policy import Verdict
from .base import GovernedModel
from .registry import ImmutableModel, RiskTier


class GatePolicy(ImmutableModel):
    """One published version of a gate policy; the document is normalised, its digest ledgered."""

    institution_wide = True  # institution-wide: every unit's gates use them

    name = models.SlugField(max_length=100, help_text="The policy's name; its versions share it.")
    version = models.PositiveIntegerField()
    document = models.JSONField(help_text="The normalised policy document (governance.gates.policy).")
    digest = models.CharField(max_length=64, help_text="SHA-256 (hex) of the document's RFC 8785 bytes.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        verbose_name_plural = "gate policies"
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="gatepolicy_unique_version")]

    def __str__(self):
        return f"{self.name} v{self.version}"


class GatePolicyAssignment(GovernedModel):
    """Which policy (by name: its latest version) applies to a risk tier, or to one model."""

    unit_path = "model__business_unit"  # a per-model override; a risk tier's is shared (below)

    risk_tier = models.CharField(max_length=12, choices=RiskTier.choices, blank=True)
    model = models.OneToOneField(
        "governance.MLModel", null=True, blank=True, on_delete=models.PROTECT, related_name="gate_policy_override"
    )
    policy_name = models.SlugField(max_length=100)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(model__isnull=True) & ~models.Q(risk_tier=""))
                | (models.Q(model__isnull=False) & models.Q(risk_tier="")),
                name="gatepolicyassignment_tier_xor_model",
            ),
            models.UniqueConstraint(
                fields=["risk_tier"], condition=models.Q(model__isnull=True), name="gatepolicyassignment_one_per_tier"
            ),
        ]

    @classmethod
    def institution_wide_rows(cls):
        return models.Q(model__isnull=True)  # a risk tier's policy applies to every unit

    def __str__(self):
        target = self.model or self.get_risk_tier_display()
        return f"{target} → {self.policy_name}"


class GateRun(GovernedModel):
    """One evaluation of a model version on a logged evaluation dataset version under a policy."""

    unit_path = "model_version__model__business_unit"

    class Status(models.TextChoices):
        # Waiting or running, then the run's verdict (one vocabulary: governance.gates.policy.Verdict).
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = Verdict.PASSED.value, "Passed"
        FAILED = Verdict.FAILED.value, "Failed"
        INCONCLUSIVE = Verdict.INCONCLUSIVE.value, "Inconclusive (a person must decide)"
        ERROR = Verdict.ERROR.value, "Error"

    FINAL = (Status.PASSED, Status.FAILED, Status.INCONCLUSIVE, Status.ERROR)

    model_version = models.ForeignKey("governance.ModelVersion", on_delete=models.PROTECT, related_name="gate_runs")
    dataset_version = models.ForeignKey(
        "governance.DatasetVersion", on_delete=models.PROTECT, related_name="gate_runs"
    )
    policy = models.ForeignKey(GatePolicy, on_delete=models.PROTECT, related_name="runs")
    label_column = models.CharField(max_length=200)
    positive_label = models.CharField(max_length=200)
    seed = models.BigIntegerField(help_text="Seeds the bootstrap and the SHAP row samples.")
    baseline = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The earlier passed run of the same model compared against (regression, nDCG).",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    reason = models.TextField(blank=True, help_text="Why the run did not pass, or what went wrong.")
    result = models.JSONField(null=True, blank=True, help_text="Every figure, seed, sample index and version.")
    result_digest = models.CharField(max_length=64, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("reverify_gaterun", "Can re-run a gate run to check that it reproduces")]

    def __str__(self):
        mv = self.model_version
        return f"Gate run #{self.pk} of {mv.model.name} v{mv.version}"

    @property
    def business_unit(self):
        return self.model_version.model.business_unit


class GateRunReverification(models.Model):
    """One re-computation of a finished gate run, done on a worker, and whether it reproduced."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        REPRODUCED = "reproduced", "Reproduces"
        DIFFERS = "differs", "Does NOT reproduce"
        # GDPR erasure rewrote its snapshot and destroyed the original's key: it cannot be re-run on it.
        REDACTED = "redacted", "Its snapshot was redacted (erasure)"

    run = models.ForeignKey(GateRun, on_delete=models.PROTECT, related_name="reverifications")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    differences = models.JSONField(default=list, blank=True, help_text="What differs from the stored result.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]

    def __str__(self):
        return f"re-verification {self.pk} of gate run {self.run_id} ({self.status})"
