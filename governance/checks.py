"""System checks: missing snapshot or subject-index keys fail ``manage.py check``."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from .storage import load_secret_key


@register(Tags.security)
def storage_keys_check(app_configs, **kwargs):
    if not settings.CUSTOS_REQUIRE_STORAGE_KEYS:
        return []
    errors = []
    for name, check_id in (("CUSTOS_MASTER_KEY", "custos.E101"), ("CUSTOS_INDEX_KEY", "custos.E102")):
        try:
            load_secret_key(name)
        except (ImproperlyConfigured, OSError) as exc:
            errors.append(
                Error(
                    f"{name} is unusable: {exc}",
                    hint="Create the keys with `python manage.py registry keys generate` and set "
                    f"{name}_FILE (or {name}, base64 of 32 random bytes).",
                    id=check_id,
                )
            )
    return errors
