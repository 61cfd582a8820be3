"""Settings for a first run on one machine: SQLite, eager tasks, development keys in var/."""

from .base import *  # noqa: F401,F403
from .base import VAR_DIR, env, env_secret

VAR_DIR.mkdir(exist_ok=True)  # the SQLite database and development keys live here

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", default="insecure-local-development-key-not-for-production")
CELERY_TASK_ALWAYS_EAGER = env.bool("CUSTOS_TASKS_EAGER", default=True)
CUSTOS_SIGNING_KEY_FILE = env.str("CUSTOS_SIGNING_KEY_FILE", default=str(VAR_DIR / "keys" / "ledger-signing.key"))
# `make run` creates the development key; checks should not block the commands that do it.
CUSTOS_REQUIRE_SIGNING_KEY = env.bool("CUSTOS_REQUIRE_SIGNING_KEY", default=False)
# Development keys of the snapshot store and subject index (`make demo` creates them).
CUSTOS_MASTER_KEY_FILE = env.str("CUSTOS_MASTER_KEY_FILE", default=str(VAR_DIR / "keys" / "snapshot-master.key"))
CUSTOS_INDEX_KEY_FILE = env.str("CUSTOS_INDEX_KEY_FILE", default=str(VAR_DIR / "keys" / "subject-index.key"))
CUSTOS_REQUIRE_STORAGE_KEYS = env.bool("CUSTOS_REQUIRE_STORAGE_KEYS", default=False)
