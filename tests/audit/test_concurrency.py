"""Concurrent writers in separate processes: gapless sequence numbers, one chain, a verified tree.

Each test migrates a database of its own (a temporary SQLite file, or a fresh PostgreSQL
database), so that committed rows never leak into the rest of the suite.
"""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parents[2]


def _env(database_url, tmp_path, signing_key_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CUSTOS_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=database_url,
        CUSTOS_SIGNING_KEY_FILE=str(signing_key_dir),
        CUSTOS_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
        CUSTOS_REQUIRE_SIGNING_KEY="false",
    )
    return env


def _manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _run_writers(env, writers, per_writer, checkpoints=0):
    tags = [f"w{i}" for i in range(writers)] + (["checkpoints"] if checkpoints else [])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.audit.ledger_writer", str(checkpoints if tag == "checkpoints" else per_writer), tag],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in tags
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err


def _entries(database_url):
    """(seq, kind, subject, payload) of every entry, and the queue's length, read over a plain connection."""
    if database_url.startswith("sqlite:///"):
        import json
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute("SELECT seq, kind, subject, payload FROM audit_ledgerentry ORDER BY seq").fetchall()
            queued = conn.execute("SELECT count(*) FROM audit_queuedentry").fetchone()[0]
        return [(seq, kind, subject, json.loads(payload)) for seq, kind, subject, payload in rows], queued
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
        rows = conn.execute("SELECT seq, kind, subject, payload FROM audit_ledgerentry ORDER BY seq").fetchall()
        queued = conn.execute("SELECT count(*) FROM audit_queuedentry").fetchone()[0]
        # Eight writers contend for the head: most entries took the queued path (ids come from its sequence).
        assert conn.execute("SELECT last_value FROM audit_queuedentry_id_seq").fetchone()[0] > 100
    return rows, queued


def _check(env, writers, per_writer, checkpoints=0):
    _run_writers(env, writers, per_writer, checkpoints)
    rows, queued = _entries(env["DATABASE_URL"])
    total = writers * per_writer
    assert queued == 0  # every committed entry was sealed by the time its writer's commit returned
    assert [seq for seq, *_ in rows] == list(range(total + 1))  # gapless from the genesis entry 0
    assert [kind for _, kind, *_ in rows[1:]] == ["test.concurrent"] * total  # failed transactions left nothing
    for w in range(writers):  # each writer's entries in its commit order, its pairs in their order
        mine = [payload["n"] for _, _, subject, payload in rows if subject == f"test.writer:w{w}"]
        assert mine == list(range(per_writer))
    result = _manage(env, "ledger", "verify", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK: {total + 1} entries" in result.stdout
    if checkpoints:  # signed while the writers wrote (none when nothing was new), each consistent with the last
        stored = int(re.search(r"(\d+) stored and 0 external checkpoint", result.stdout).group(1))
        assert 2 <= stored <= checkpoints
    result = _manage(env, "ledger", "checkpoint")
    assert result.returncode == 0 and f"\n{total + 1}\n" in result.stdout, result.stderr


@pytest.mark.skipif(
    django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3",
    reason="the SQLite run of the suite covers SQLite writers; PostgreSQL runs 8 x 250 below",
)
def test_concurrent_writers_on_sqlite(tmp_path, signing_key_dir):
    env = _env(f"sqlite:///{tmp_path / 'concurrent.sqlite3'}", tmp_path, signing_key_dir)
    result = _manage(env, "migrate", "--noinput", "-v0")
    assert result.returncode == 0, result.stderr
    _check(env, writers=4, per_writer=25)


@pytest.mark.postgres
@pytest.mark.skipif(
    django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="8 writers x 250 appends runs on PostgreSQL",
)
def test_eight_writers_times_250_on_postgres(tmp_path, signing_key_dir):
    import psycopg

    db = django_settings.DATABASES["default"]
    name = f"custos_concurrency_{uuid.uuid4().hex[:8]}"
    dsn = dict(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None)
    with psycopg.connect(dbname="postgres", autocommit=True, **dsn) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        env = _env(f"postgres://{auth}@{dsn['host']}:{dsn['port']}/{name}", tmp_path, signing_key_dir)
        result = _manage(env, "migrate", "--noinput", "-v0")
        assert result.returncode == 0, result.stderr
        _check(env, writers=8, per_writer=250, checkpoints=20)
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **dsn) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
