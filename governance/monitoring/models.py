"""Monitoring's records: plans and their versions, window aggregates, batches, join records,
findings and incidents. Each declares ``unit_path`` so ``for_user`` and the ledger's read scope
cover it; only ``governance.monitoring.services`` writes them (and ledgers every change).

No production row is stored: a window holds counts on the reference's bins, a batch its digest
and counts, a join record the keyed hash of a prediction id with its window and group cell
(deleted after the plan's label delay).
"""

from django.conf import settings
from django.db import models

from governance.models.base import GovernedModel

from .policy import INCIDENT_CATEGORIES

_UNIT = "model_version__model__business_unit"


class MonitoringPlan(GovernedModel):
    """The post-market monitoring plan (Art. 72, Annex IV point 9) of one production model version:
    its reference profile (computed once) and, in versions, its limits and windows."""

    unit_path = _UNIT

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        NO_REFERENCE = "no_reference", "No reference (see the problem)"

    model_version = models.OneToOneField("governance.ModelVersion", on_delete=models.PROTECT,
                                         related_name="monitoring_plan")
    release = models.ForeignKey("governance.ReleaseRequest", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.ACTIVE)
    reference = models.JSONField(null=True, blank=True, help_text="custos.monitoring.reference/1 profile.")
    reference_digest = models.CharField(max_length=64, blank=True)
    reference_dataset = models.ForeignKey("governance.DatasetVersion", null=True, blank=True,
                                          on_delete=models.PROTECT, related_name="+")
    reference_origin = models.CharField(max_length=40, blank=True, help_text="gate evaluation or training snapshot.")
    reference_problem = models.TextField(blank=True)
    gate_figures = models.JSONField(default=dict, blank=True, help_text="The gate's performance figures.")
    timestamp_column = models.CharField(max_length=200, default="timestamp")
    prediction_id_column = models.CharField(max_length=200, default="prediction_id")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("revoke_finding", "Can revoke a release because of a monitoring finding")]

    def __str__(self):
        return f"monitoring plan of {self.model_version}"

    @property
    def business_unit(self):
        return self.model_version.model.business_unit


class MonitoringPlanVersion(GovernedModel):
    """One version of a plan's policy (limits, window, label delay, origin); the latest applies."""

    unit_path = "plan__" + _UNIT

    plan = models.ForeignKey(MonitoringPlan, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    policy = models.JSONField()
    digest = models.CharField(max_length=64)
    origin = models.DateTimeField(help_text="Windows are [origin + k·length, origin + (k+1)·length).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plan", "-version"]
        constraints = [models.UniqueConstraint(fields=["plan", "version"], name="monitoringplanversion_unique")]

    def __str__(self):
        return f"{self.plan} v{self.version}"


class MonitoringWindow(GovernedModel):
    """The aggregate of one window (counts only) and, once closed, its signed evaluation."""

    unit_path = "plan__" + _UNIT

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    plan = models.ForeignKey(MonitoringPlan, on_delete=models.PROTECT, related_name="windows")
    start = models.DateTimeField()
    end = models.DateTimeField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    aggregate = models.JSONField(help_text="custos.monitoring.window/1: counts on the reference's bins.")
    aggregate_digest = models.CharField(max_length=64)
    rows = models.BigIntegerField(default=0)
    labelled = models.BigIntegerField(default=0)
    batches = models.PositiveIntegerField(default=0)
    evaluation = models.JSONField(null=True, blank=True)
    evaluation_digest = models.CharField(max_length=64, blank=True)
    evaluated_labelled = models.BigIntegerField(default=0)
    plan_version = models.ForeignKey(MonitoringPlanVersion, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", help_text="The plan version it was judged by.")
    verdict = models.CharField(max_length=14, blank=True)
    ledger_seq = models.BigIntegerField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["plan", "start"]
        constraints = [models.UniqueConstraint(fields=["plan", "start"], name="monitoringwindow_unique_start")]

    def __str__(self):
        return f"window {self.start:%Y-%m-%d} of {self.plan.model_version}"


class IngestedBatch(GovernedModel):
    """One batch that was folded into windows: its digest (idempotency) and counts, never its rows."""

    unit_path = "plan__" + _UNIT

    class Source(models.TextChoices):
        ROWS = "rows", "Rows (CSV, Parquet, JSON lines)"
        AGGREGATE = "aggregate", "Pre-aggregated window"

    plan = models.ForeignKey(MonitoringPlan, on_delete=models.PROTECT, related_name="batches")
    digest = models.CharField(max_length=64)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ROWS)
    file_format = models.CharField(max_length=10, blank=True)
    rows_read = models.BigIntegerField(default=0)
    rows_accepted = models.BigIntegerField(default=0)
    rejected = models.JSONField(default=dict)
    windows = models.JSONField(default=list, help_text="Starts of the windows it fed.")
    ignored_columns = models.JSONField(default=list)
    join_records = models.BigIntegerField(default=0)
    duplicate_ids = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "ingested batches"
        constraints = [models.UniqueConstraint(fields=["plan", "digest"], name="ingestedbatch_unique_digest")]


class JoinRecord(models.Model):
    """What a later label needs: the HMAC of a prediction id, its window, group cell and predicted
    class. Deleted once the plan's label delay after its window's end has passed."""

    plan = models.ForeignKey(MonitoringPlan, on_delete=models.PROTECT, related_name="+")
    window = models.ForeignKey(MonitoringWindow, on_delete=models.PROTECT, related_name="+")
    prediction_hash = models.CharField(max_length=64)
    cell = models.IntegerField()
    predicted = models.SmallIntegerField()
    label = models.SmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "prediction_hash"], name="joinrecord_unique_hash")]


class Finding(GovernedModel):
    """An alert of a closed window, for a Model Risk Validator to triage."""

    unit_path = "plan__" + _UNIT

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DISMISSED = "dismissed", "Dismissed"
        INCIDENT = "incident", "Incident opened"
        REVOCATION_REQUESTED = "revocation_requested", "Revocation requested"
        REVOKED = "revoked", "Release revoked"

    OPEN_STATES = (State.OPEN, State.REVOCATION_REQUESTED)

    plan = models.ForeignKey(MonitoringPlan, on_delete=models.PROTECT, related_name="findings")
    window = models.ForeignKey(MonitoringWindow, on_delete=models.PROTECT, related_name="findings")
    statistic = models.CharField(max_length=60)
    column = models.CharField(max_length=200, blank=True)
    verdict = models.CharField(max_length=14)
    value = models.FloatField(null=True, blank=True)
    summary = models.JSONField(default=dict, help_text="The figure: value, limits, n, reason.")
    state = models.CharField(max_length=22, choices=State.choices, default=State.OPEN)
    justification = models.TextField(blank=True)
    triaged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    triaged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"finding {self.pk}: {self.statistic} {self.column} ({self.verdict})"


class Incident(GovernedModel):
    """A serious incident (Art. 73) opened from a finding: awareness, category, deadline, report."""

    unit_path = "plan__" + _UNIT

    plan = models.ForeignKey(MonitoringPlan, on_delete=models.PROTECT, related_name="incidents")
    finding = models.OneToOneField(Finding, on_delete=models.PROTECT, related_name="incident")
    category = models.CharField(max_length=12, choices=list(INCIDENT_CATEGORIES.items()))
    aware_at = models.DateTimeField(help_text="When the provider became aware of it.")
    deadline = models.DateTimeField(help_text="Art. 73: the report is due by then.")
    description = models.TextField()
    reported_at = models.DateTimeField(null=True, blank=True)
    report_reference = models.CharField(max_length=200, blank=True, help_text="The authority's reference.")
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deadline"]

    def __str__(self):
        return f"incident {self.pk} ({self.category}, due {self.deadline:%Y-%m-%d})"
