"""Who may act where: business units (object-permission scopes), the access rule, and API tokens.

A role says what a person may do; a grant of ``UNIT_ACCESS_PERM`` on a BusinessUnit (a
django-guardian object permission, to the user or one of their groups) says where. Superusers
and the global read roles (Auditor) read every unit, and act only where they were granted.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from .base import UNIT_ACCESS_PERM, GovernedModel, granted_units, sees_all_units

__all__ = ["UNIT_ACCESS_PERM", "BusinessUnit", "ServiceToken", "granted_units", "sees_all_units"]


class BusinessUnit(GovernedModel):
    """A part of the institution that owns models; access is granted per unit."""

    unit_path = "pk"

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("access_businessunit", "Can work with the unit's models and data")]

    def __str__(self):
        return self.name


class ServiceToken(GovernedModel):
    """An API token of a service account. Only a SHA-256 digest of the token is stored."""

    unit_path = None  # a service account's token; its grants are on its user

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="service_tokens")
    name = models.CharField(max_length=120, help_text="What the token is for, e.g. 'deploy job'.")
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part, used to find the token.")
    digest = models.CharField(max_length=64, help_text="SHA-256 (hex) of the whole token.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix} ({self.user})"

    @property
    def is_active(self):
        return self.revoked_at is None and self.expires_at > timezone.now()

