"""An issued report: one rendering of a document as the ledger stood at a named checkpoint.

A report is requested (queued), rendered on a worker (rendering, with its progress) and then
issued: its bytes are stored with their SHA-256 and ``report.issued`` is ledgered. From then on
the row never changes (``ReportImmutable``): a new rendering is a new report.
"""

from django.conf import settings
from django.db import models

from governance.models.base import GovernedModel

from ..rules.documents import DocumentKind


class ReportImmutable(Exception):
    """Raised when code tries to change an issued report."""


class Report(GovernedModel):
    unit_path = "business_unit"  # None for an inventory of every unit: global readers only

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RENDERING = "rendering", "Rendering"
        ISSUED = "issued", "Issued"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=24, choices=[(k.value, k.value) for k in DocumentKind])
    about = models.CharField(max_length=100, help_text="The ledger subject the report is about.")
    business_unit = models.ForeignKey(
        "governance.BusinessUnit", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent rendered.")
    step = models.CharField(max_length=100, blank=True, help_text="What the worker is doing.")
    error = models.TextField(blank=True)
    checkpoint_size = models.BigIntegerField(null=True, blank=True, help_text="Tree size of the as-of checkpoint.")
    as_of = models.DateTimeField(null=True, blank=True, help_text="The as-of checkpoint's signed time.")
    template_version = models.CharField(max_length=20, blank=True)
    media_type = models.CharField(max_length=60, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    stored_path = models.CharField(max_length=300, blank=True, help_text="Relative to the storage root.")
    attachments = models.JSONField(default=list, blank=True, help_text="[{name, media_type, sha256}] carried.")
    issuer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    ledger_seq = models.BigIntegerField(null=True, blank=True, help_text="Sequence number of report.issued.")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"report {self.pk}: {self.kind} of {self.about} ({self.state})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            stored = type(self).objects.unrestricted().filter(pk=self.pk).values_list("state", flat=True).first()
            if stored == self.State.ISSUED:
                raise ReportImmutable(f"Report {self.pk} is issued and immutable; request a new one.")
        super().save(*args, **kwargs)

    @property
    def filename(self) -> str:
        extension = "pdf" if self.media_type == "application/pdf" else "cdx.json"
        return f"custos-{self.kind}-{self.about.replace(':', '-').replace('.', '-')}-{self.pk}.{extension}"
