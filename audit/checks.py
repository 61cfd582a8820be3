"""System checks: a missing signing key fails ``manage.py check``, not the first request."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from .keys import signing_key


@register(Tags.security, deploy=False)
def signing_key_check(app_configs, **kwargs):
    if not settings.CUSTOS_REQUIRE_SIGNING_KEY:
        return []
    try:
        signing_key()
    except (ImproperlyConfigured, ValueError, TypeError) as exc:
        return [
            Error(
                f"The ledger signing key is unusable: {exc}",
                hint="Create one with `python manage.py ledger keys generate` and point "
                "CUSTOS_SIGNING_KEY_FILE at it.",
                id="custos.E001",
            )
        ]
    return []
