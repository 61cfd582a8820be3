"""What every governed record shares."""

from django.db import models


class GovernedModel(models.Model):
    """A record whose changes are ledgered; it names itself as ``app_label.model:pk`` there."""

    class Meta:
        abstract = True

    @property
    def ledger_subject(self) -> str:
        return f"{self._meta.label_lower}:{self.pk}"
