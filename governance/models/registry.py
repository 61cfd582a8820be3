"""The registry: datasets and their logged snapshots, code, models, training runs, lineage.

Versions are immutable once registered: a correction is a new version. Every row here is
created by a service in governance/services/registry.py, which ledgers it in the same
transaction. Data-subject identifiers never appear here in clear: the subject index holds
keyed hashes (HMAC-SHA256) only.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from .base import GovernedModel


class ImmutableError(Exception):
    """Raised when code tries to change a registered version; register a new one instead."""


class ImmutableModel(GovernedModel):
    """A row that is written once. Changing it would silently rewrite evidence."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError(f"{type(self).__name__} is immutable once registered; register a new version.")
        super().save(*args, **kwargs)


class RiskTier(models.TextChoices):
    """EU AI Act risk tiers."""

    PROHIBITED = "prohibited", "Prohibited (Art. 5)"
    HIGH = "high", "High risk (Art. 6, Annex III)"
    LIMITED = "limited", "Limited risk (transparency, Art. 50)"
    MINIMAL = "minimal", "Minimal risk"


class AnnexIIICategory(models.TextChoices):
    """EU AI Act Annex III areas of high-risk systems (the ones a bank or employer meets)."""

    NONE = "", "—"
    BIOMETRICS = "biometrics", "1. Biometrics"
    CRITICAL_INFRASTRUCTURE = "critical_infrastructure", "2. Critical infrastructure"
    EDUCATION = "education", "3. Education and vocational training"
    EMPLOYMENT = "employment", "4. Employment, workers management"
    CREDITWORTHINESS = "creditworthiness", "5(b). Creditworthiness and credit scoring"
    INSURANCE_PRICING = "insurance_pricing", "5(c). Life and health insurance pricing"
    ESSENTIAL_SERVICES = "essential_services", "5(a,d). Other essential services"
    LAW_ENFORCEMENT = "law_enforcement", "6. Law enforcement"
    MIGRATION = "migration", "7. Migration, asylum, border control"
    JUSTICE = "justice", "8. Administration of justice, democratic processes"


class Dataset(GovernedModel):
    """A named dataset of a business unit; its content lives in versions."""

    unit_path = "business_unit"

    business_unit = models.ForeignKey("governance.BusinessUnit", on_delete=models.PROTECT, related_name="datasets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["business_unit", "name"]
        constraints = [models.UniqueConstraint(fields=["business_unit", "name"], name="dataset_unique_name_per_unit")]

    def __str__(self):
        return self.name


class DatasetVersion(ImmutableModel):
    """One exact snapshot of a dataset: stored by Custos (encrypted) or referenced by URI + hash."""

    unit_path = "dataset__business_unit"

    class Storage(models.TextChoices):
        STORED = "stored", "Stored by Custos (encrypted)"
        EXTERNAL = "external", "External reference (URI + SHA-256)"
        OPENLINEAGE = "openlineage", "Reported by OpenLineage (no content hash)"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"
        UNKNOWN = "", "Unknown"

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=100)
    storage = models.CharField(max_length=12, choices=Storage.choices)
    file_format = models.CharField(max_length=10, choices=Format.choices, blank=True)
    uri = models.CharField(max_length=1000, blank=True, help_text="Where an external snapshot lives.")
    sha256 = models.CharField(max_length=64, blank=True, db_index=True, help_text="SHA-256 (hex) of the file's bytes.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    schema = models.JSONField(default=list, blank=True, help_text="[{name, type}] in column order.")
    subject_column = models.CharField(max_length=200, blank=True, help_text="Column that identifies the data subject.")
    personal_columns = models.JSONField(default=list, blank=True)
    sensitive_columns = models.JSONField(default=list, blank=True)
    stored_path = models.CharField(max_length=500, blank=True, help_text="Encrypted file, relative to the storage root.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="datasetversion_unique_version"),
        ]

    def __str__(self):
        return f"{self.dataset.name}@{self.version}"

    @property
    def business_unit(self):
        return self.dataset.business_unit


class SnapshotKey(GovernedModel):
    """The data key of one stored snapshot, wrapped (RFC 3394) by the master key.

    Kept apart from the immutable version so that it can be destroyed: once ``wrapped_key`` is
    gone, every copy of the snapshot's ciphertext is unreadable.
    """

    unit_path = "dataset_version__dataset__business_unit"

    dataset_version = models.OneToOneField(DatasetVersion, on_delete=models.PROTECT, related_name="snapshot_key")
    master_key_id = models.CharField(max_length=16, help_text="Which master key wrapped the data key.")
    wrapped_key = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("destroy_snapshotkey", "Can destroy a snapshot's data key (erasure)")]

    def __str__(self):
        return f"key of {self.dataset_version_id} ({'destroyed' if self.destroyed_at else 'live'})"


class SubjectIndexEntry(models.Model):
    """Keyed hash of a data-subject id -> a dataset version that holds them, with the row count."""

    subject_key = models.CharField(max_length=64, help_text="HMAC-SHA256 (hex) of the normalised subject id.")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="subject_index")
    row_count = models.PositiveIntegerField()

    class Meta:
        verbose_name_plural = "subject index entries"
        constraints = [
            # Leads with subject_key, so it is also the index of lookups by subject.
            models.UniqueConstraint(fields=["subject_key", "dataset_version"], name="subjectindex_unique"),
        ]


class CodeVersion(ImmutableModel):
    """The code a run executed: repository, commit and (optionally) container image digest."""

    unit_path = "business_unit"

    business_unit = models.ForeignKey("governance.BusinessUnit", on_delete=models.PROTECT, related_name="code_versions")
    repository_url = models.CharField(max_length=500)
    commit_sha = models.CharField(max_length=64)
    image_digest = models.CharField(max_length=100, blank=True, help_text="e.g. sha256:<64 hex>")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["business_unit", "repository_url", "commit_sha", "image_digest"], name="codeversion_unique"
            ),
        ]

    def __str__(self):
        return f"{self.repository_url}@{self.commit_sha[:12]}"


class MLModel(GovernedModel):
    """A model as a product: its purpose and EU AI Act classification; its artifacts are versions."""

    unit_path = "business_unit"

    business_unit = models.ForeignKey("governance.BusinessUnit", on_delete=models.PROTECT, related_name="models")
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    intended_purpose = models.TextField()
    risk_tier = models.CharField(max_length=12, choices=RiskTier.choices)
    annex_iii_category = models.CharField(max_length=30, choices=AnnexIIICategory.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["business_unit", "name"]
        verbose_name = "model"
        constraints = [
            models.UniqueConstraint(fields=["business_unit", "name"], name="mlmodel_unique_name_per_unit"),
            models.CheckConstraint(
                condition=~models.Q(risk_tier="high") | ~models.Q(annex_iii_category=""),
                name="mlmodel_high_risk_has_annex_iii_category",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        # Said here too (model_create checks it first) so that the admin's form shows it on the
        # field instead of a constraint's name, or a 500 for a category on a non-high-risk model.
        if self.risk_tier == RiskTier.HIGH and not self.annex_iii_category:
            raise ValidationError(
                {"annex_iii_category": "A high-risk model names its Annex III category (e.g. creditworthiness)."}
            )
        if self.risk_tier and self.risk_tier != RiskTier.HIGH and self.annex_iii_category:
            raise ValidationError({"annex_iii_category": "Only high-risk models have an Annex III category."})


class ModelVersion(ImmutableModel):
    """One exact model artifact, identified by its SHA-256."""

    unit_path = "model__business_unit"

    class Format(models.TextChoices):
        SKOPS = "skops", "scikit-learn (skops)"
        XGBOOST_JSON = "xgboost-json", "XGBoost JSON"
        XGBOOST_UBJ = "xgboost-ubj", "XGBoost UBJSON"
        LIGHTGBM_TEXT = "lightgbm-text", "LightGBM text"
        PICKLE = "pickle", "Pickle (trusted deployments only)"
        JOBLIB = "joblib", "joblib (trusted deployments only)"

    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=100)
    artifact_sha256 = models.CharField(max_length=64, db_index=True)
    artifact_format = models.CharField(max_length=16, choices=Format.choices)
    artifact_size = models.BigIntegerField()
    artifact_path = models.CharField(max_length=500, help_text="Relative to the storage root.")
    framework = models.CharField(max_length=40)
    framework_version = models.CharField(max_length=40, blank=True)
    feature_names = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="modelversion_unique_version")]

    def __str__(self):
        return f"{self.model.name}@{self.version}"

    @property
    def business_unit(self):
        return self.model.business_unit


class TrainingRun(GovernedModel):
    """A run that trained (or evaluated) a model: inputs, code, parameters, metrics, versions, seeds.

    Registered through the API the run is complete and immutable. Reported through
    OpenLineage it grows as events arrive (START, then COMPLETE): each event only adds input or
    output links and its state, and each is ledgered.
    """

    unit_path = "business_unit"

    class Source(models.TextChoices):
        API = "api", "Registry API"
        OPENLINEAGE = "openlineage", "OpenLineage event"

    business_unit = models.ForeignKey("governance.BusinessUnit", on_delete=models.PROTECT, related_name="training_runs")
    name = models.CharField(max_length=200, blank=True, help_text="Job name.")
    external_run_id = models.CharField(max_length=100, blank=True, help_text="Run id in the pipeline (OpenLineage runId).")
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.API)
    code_version = models.ForeignKey(CodeVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="training_run",
        help_text="The model version this run produced.",
    )
    parameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    seeds = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=20, blank=True, help_text="Last OpenLineage event type.")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["business_unit", "external_run_id"],
                condition=~models.Q(external_run_id=""),
                name="trainingrun_unique_external_id",
            ),
        ]

    def __str__(self):
        return f"run {self.pk} {self.name or self.external_run_id}".strip()


class TrainingRunInput(models.Model):
    """A dataset version a run read, and in which role."""

    class Role(models.TextChoices):
        TRAIN = "train", "Training"
        VALIDATION = "validation", "Validation"
        TEST = "test", "Test"
        INPUT = "input", "Input (role not stated)"

    run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="inputs")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="run_inputs")
    role = models.CharField(max_length=12, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "dataset_version", "role"], name="trainingruninput_unique"),
        ]


class TrainingRunOutput(models.Model):
    """A dataset version a run wrote (reported by OpenLineage)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="outputs")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="run_outputs")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "dataset_version"], name="trainingrunoutput_unique")]


class OpenLineageEvent(GovernedModel):
    """An accepted OpenLineage event, kept verbatim; (run id, event type) makes re-sends idempotent."""

    unit_path = "business_unit"

    event_kind = models.CharField(max_length=12, help_text="run, dataset or job")
    event_type = models.CharField(max_length=20, blank=True, help_text="START, COMPLETE, … (run events)")
    openlineage_run_id = models.CharField(max_length=100, blank=True)
    job_namespace = models.CharField(max_length=200, blank=True)
    job_name = models.CharField(max_length=500, blank=True)
    event_time = models.DateTimeField()
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON of the event.")
    body = models.JSONField()
    business_unit = models.ForeignKey("governance.BusinessUnit", on_delete=models.PROTECT, related_name="+")
    training_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="openlineage_events"
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            # A run has one START and one terminal event of each type; RUNNING and OTHER may repeat.
            models.UniqueConstraint(
                fields=["business_unit", "openlineage_run_id", "event_type"],
                condition=models.Q(event_kind="run", event_type__in=["START", "COMPLETE", "ABORT", "FAIL"]),
                name="openlineage_run_event_once",
            ),
            models.UniqueConstraint(fields=["business_unit", "sha256"], name="openlineage_event_once"),
        ]
