"""Settings shared by every environment, read from the environment (12-factor).

Secrets are never written here: each one comes from an environment variable or from a file
named by ``<NAME>_FILE`` (see ``env_secret``).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def env_secret(name, default=None):
    """Return the secret NAME from the environment, or from the file named by NAME_FILE."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        return Path(path).read_text().strip()
    return env.str(name, default=default)


DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "guardian",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
LOCAL_APPS = [
    "config.idempotency",
    "audit",
    "governance",
    "governance.monitoring",
    "reports",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.RefuseNulInQueryMiddleware",  # PostgreSQL cannot filter by NUL: 400, not 500
    "config.middleware.RefuseChunkedBodyMiddleware",  # Django reads no chunked body: 411, not an empty one
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is the embedded default for a first run; PostgreSQL in production and CI.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'custos.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock at BEGIN, so concurrent ledger writers
    # queue instead of failing with "database is locked" at their first write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
GUARDIAN_RAISE_403 = True
ANONYMOUS_USER_NAME = None  # guardian: no anonymous object permissions

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = ["config.formats"]  # ISO 8601 with seconds, UTC, on every page
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_ROOT = env.path("CUSTOS_STORAGE_DIR", default=str(VAR_DIR / "storage"))
MEDIA_URL = None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "admin:login"

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",  # refuses NUL characters, which PostgreSQL cannot store
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttling.AnonRateThrottle",  # fixed-window counters, O(1) per request
        "config.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("CUSTOS_THROTTLE_ANON", default="60/min"),
        "user": env.str("CUSTOS_THROTTLE_USER", default="6000/min"),
    },
    "EXCEPTION_HANDLER": "config.api.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.schema.ProblemAutoSchema",  # documents each operation's problem responses
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Custos API",
    "DESCRIPTION": (
        "Governance and audit service for regulated machine learning. People authenticate "
        "with a session; pipelines with `Authorization: Bearer <token>`. Every error is an "
        "RFC 9457 problem details document (`application/problem+json`)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SnapshotFormatEnum": "governance.api.registry.SNAPSHOT_FORMATS",
        "ArtifactFormatEnum": "governance.models.registry.ModelVersion.Format",
        "GateRunStatusEnum": "governance.models.gates.GateRun.Status",
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
CELERY_TASK_ALWAYS_EAGER = env.bool("CUSTOS_TASKS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Seconds after which a gate run still queued or running is ended as an error (a lost worker).
CUSTOS_GATE_RUN_TIMEOUT = env.int("CUSTOS_GATE_RUN_TIMEOUT", default=3600)
# GDPR erasure: one officer may record, verify, approve and confirm holds (a small organisation).
CUSTOS_ERASURE_SINGLE_OFFICER = env.bool("CUSTOS_ERASURE_SINGLE_OFFICER", default=False)
# Days a final erasure request keeps the person's keyed hash (to keep them out of new uploads and
# recognise a repeated request), after which `erasure purge-hashes` removes it.
CUSTOS_ERASURE_HASH_RETENTION_DAYS = env.int("CUSTOS_ERASURE_HASH_RETENTION_DAYS", default=365)
# Seconds between checkpoints signed by Celery beat (each also seals any queued ledger entries).
CUSTOS_CHECKPOINT_INTERVAL = env.int("CUSTOS_CHECKPOINT_INTERVAL", default=300)
CELERY_BEAT_SCHEDULE = {
    # Sign and export a ledger checkpoint (a no-op when nothing was appended since the last).
    "ledger-checkpoint": {
        "task": "audit.checkpoint",
        "schedule": CUSTOS_CHECKPOINT_INTERVAL,
    },
    # End in error the gate runs that no worker finished within CUSTOS_GATE_RUN_TIMEOUT.
    "gate-runs-abandon-stuck": {
        "task": "governance.gate_runs_abandon_stuck",
        "schedule": 600,
    },
    # Close and evaluate the monitoring windows that have ended; purge expired join records.
    "monitoring-windows-close": {
        "task": "monitoring.windows_close",
        "schedule": 3600,
    },
}

# --- Custos ---------------------------------------------------------------------------------
# Private Ed25519 signing key of the ledger: a file path, never the key itself.
CUSTOS_SIGNING_KEY_FILE = env.str("CUSTOS_SIGNING_KEY_FILE", default="")
# Where signed checkpoints are exported (the anchor outside the database).
# Which ledger entries a reader may see in the API and the admin: those about their business units.
CUSTOS_LEDGER_READ_SCOPE = "governance.selectors.ledger.scope_entries"
# "Everything about" a subject, for evidence bundles (ledger export --related, the admin's export).
CUSTOS_LEDGER_RELATED_SUBJECTS = "governance.selectors.ledger.related_subjects"
CUSTOS_CHECKPOINT_DIR = env.str("CUSTOS_CHECKPOINT_DIR", default=str(VAR_DIR / "checkpoints"))
# Origin line of checkpoints (C2SP tlog-checkpoint): a unique name for this log.
CUSTOS_LOG_ORIGIN = env.str("CUSTOS_LOG_ORIGIN", default="custos.local/ledger")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("CUSTOS_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# `manage.py check` fails when the signing key is missing (off only in the test settings,
# whose fixtures create a key per test session).
CUSTOS_REQUIRE_SIGNING_KEY = env.bool("CUSTOS_REQUIRE_SIGNING_KEY", default=True)

# --- Registry (logged snapshots, subject index, model artifacts) ----------------------------
# Master key that wraps each snapshot's data key: 32 bytes, base64, from the environment or a
# file (CUSTOS_MASTER_KEY_FILE). The subject-index HMAC key likewise (CUSTOS_INDEX_KEY[_FILE]).
CUSTOS_MASTER_KEY = env.str("CUSTOS_MASTER_KEY", default="")
CUSTOS_MASTER_KEY_FILE = env.str("CUSTOS_MASTER_KEY_FILE", default="")
CUSTOS_INDEX_KEY = env.str("CUSTOS_INDEX_KEY", default="")
CUSTOS_INDEX_KEY_FILE = env.str("CUSTOS_INDEX_KEY_FILE", default="")
# `manage.py check` fails when these keys are missing (off in local and test settings).
CUSTOS_REQUIRE_STORAGE_KEYS = env.bool("CUSTOS_REQUIRE_STORAGE_KEYS", default=True)
# Largest snapshot or artifact accepted by upload, in bytes (default 2 GiB).
CUSTOS_MAX_UPLOAD_BYTES = env.int("CUSTOS_MAX_UPLOAD_BYTES", default=2 * 1024**3)
# Largest monitoring batch accepted by the API (streamed; the rows are not kept).
CUSTOS_MONITORING_MAX_BATCH_BYTES = env.int("CUSTOS_MONITORING_MAX_BATCH_BYTES", default=512 * 1024**2)
# Artifacts are loaded whole in memory to be checked (snapshots are streamed): a smaller limit.
CUSTOS_MAX_ARTIFACT_BYTES = env.int("CUSTOS_MAX_ARTIFACT_BYTES", default=512 * 1024**2)
# Pickle and joblib artifacts run code when loaded: refused unless a trusted deployment opts in.
CUSTOS_ALLOW_PICKLE_ARTIFACTS = env.bool("CUSTOS_ALLOW_PICKLE_ARTIFACTS", default=False)
# skops types trusted beyond skops' own defaults, as exact names or prefixes ending in ".".
CUSTOS_SKOPS_TRUSTED_TYPES = env.list("CUSTOS_SKOPS_TRUSTED_TYPES", default=["sklearn."])
