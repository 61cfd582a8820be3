"""Settings for the test suite: fast hashing, eager tasks, keys made per test session."""

from .base import *  # noqa: F401,F403
from .base import REST_FRAMEWORK, env

DEBUG = False
SECRET_KEY = "test-only-secret-key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CUSTOS_TASKS_EAGER", default=True)
# Keys and storage directories are pointed at temporary folders by tests/conftest.py.
CUSTOS_SIGNING_KEY_FILE = ""
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"anon": "1000/min", "user": "100000/min"},
}
CUSTOS_REQUIRE_SIGNING_KEY = False
# Snapshot master key and subject-index key are made per test session by tests/conftest.py.
CUSTOS_MASTER_KEY = ""
CUSTOS_MASTER_KEY_FILE = ""
CUSTOS_INDEX_KEY = ""
CUSTOS_INDEX_KEY_FILE = ""
CUSTOS_REQUIRE_STORAGE_KEYS = False
# Django's live test server parses MEDIA_URL (None in base: Custos serves no media files).
MEDIA_URL = "/_no_media/"
