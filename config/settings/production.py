"""Production settings: PostgreSQL, a Celery broker, HTTPS, WhiteNoise, every secret required."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import DATABASES, MIDDLEWARE, STORAGES, env

DEBUG = False
if not SECRET_KEY:  # noqa: F405
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY or DJANGO_SECRET_KEY_FILE.")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and not env.bool(
    "CUSTOS_ALLOW_SQLITE", default=False
):
    raise ImproperlyConfigured("Production needs DATABASE_URL pointing at PostgreSQL.")

# WhiteNoise serves the collected static files (admin, API docs) right after SecurityMiddleware.
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# The rate throttles' counters (config/throttling.py). By default each worker process counts on
# its own, so a limit of N/min allows N per worker. CUSTOS_CACHE_URL=redis://HOST:6379/1 shares
# them across workers and nodes, for ~0.35 ms more per API request (two round trips; a local
# counter takes ~0.005 ms): measured in benchmarks/README.md, "Release status".
CACHES = {"default": env.cache("CUSTOS_CACHE_URL", default="locmemcache://")}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
