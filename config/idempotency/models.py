"""The answers of POSTs made with an ``Idempotency-Key``: a replay cache, not governed evidence."""

from django.conf import settings
from django.db import models


class IdempotencyRecord(models.Model):
    """The answer to a POST made with an ``Idempotency-Key``, replayed when the same POST repeats."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=200)
    request_sha256 = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_key_per_user")]
