"""Throw-away PostgreSQL databases and Django subprocesses for the ledger benchmarks."""

import os
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


def _admin():
    import psycopg

    return psycopg.connect(f"{SERVER}/postgres", autocommit=True)


@contextmanager
def scratch_database(prefix: str, *, migrate: bool = True):
    """Create a PostgreSQL database (migrated), yield (url, env for manage.py), then drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    tmp = tempfile.TemporaryDirectory(prefix="custos-bench-")
    try:
        from audit.keys import generate_key_file

        key = Path(tmp.name) / "ledger.key"
        generate_key_file(key)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CUSTOS_", "DATABASE_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.local",
            DATABASE_URL=f"{SERVER}/{name}",
            CUSTOS_SIGNING_KEY_FILE=str(key),
            CUSTOS_CHECKPOINT_DIR=str(Path(tmp.name) / "checkpoints"),
            CUSTOS_REQUIRE_SIGNING_KEY="false",
            DATABASE_CONN_MAX_AGE="0",
        )
        if migrate:
            subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        yield env
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        tmp.cleanup()


def run_module(env, module: str, *args: str) -> str:
    """Run ``python -m MODULE ARGS`` with ENV in a fresh process; return its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def setup_django():
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
