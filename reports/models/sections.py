"""Human sections of the technical documentation: what a person writes for an Annex IV item.

Versioned per model and item key (``reports.rules.annex_iv``): a change is a new version, whose
digest, author and time are ledgered; the documentation shows the latest version the ledger
covered at its checkpoint, and names who wrote it and when.
"""

from django.conf import settings
from django.db import models

from governance.models.base import GovernedModel

from ..rules.annex_iv import HUMAN_KEYS, ITEM_BY_KEY


class HumanSection(GovernedModel):
    unit_path = "model__business_unit"

    model = models.ForeignKey("governance.MLModel", on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=4, choices=[(k, ITEM_BY_KEY[k].label) for k in HUMAN_KEYS],
                           help_text="The Annex IV item.")
    version = models.PositiveIntegerField()
    text = models.TextField()
    digest = models.CharField(max_length=64, help_text="SHA-256 (hex) of the text (UTF-8).")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    ledger_seq = models.BigIntegerField(help_text="Sequence number of its ledger entry.")

    class Meta:
        ordering = ["model", "key", "-version"]
        constraints = [models.UniqueConstraint(fields=["model", "key", "version"], name="humansection_unique_version")]

    def __str__(self):
        return f"{self.model} {ITEM_BY_KEY[self.key].label} v{self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("A human section version never changes; record a new version.")
        super().save(*args, **kwargs)
