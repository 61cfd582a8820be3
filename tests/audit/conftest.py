"""Fixtures for the ledger tests: appending entries, and acting as a database owner would."""

import importlib
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import connection

from audit.services import ledger_append

triggers = importlib.import_module("audit.migrations.0004_append_only_triggers")


def raw(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


@contextmanager
def owner_bypass():
    """Act as the database owner: switch the append-only triggers off, and back on afterwards."""
    if connection.vendor == "postgresql":
        for table in triggers.TABLES:
            raw(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    else:
        for statement in triggers.drop_sql("sqlite"):
            raw(statement)
    try:
        yield
    finally:
        if connection.vendor == "postgresql":
            for table in triggers.TABLES:
                raw(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        else:
            for statement in triggers.trigger_sql("sqlite"):
                raw(statement)


@pytest.fixture
def append(db):
    """Append N test entries about a few subjects; return them."""

    def make(n=1, *, subject=None, kind="test.recorded"):
        return [
            ledger_append(
                kind=kind,
                subject=subject or f"governance.modelversion:{i % 3}",
                payload={"i": i, "artifact_sha256": f"{i:064x}"},
                actor="tester",
            )
            for i in range(n)
        ]

    return make


@pytest.fixture
def verify():
    """Run `manage.py ledger verify` and return (ok, message)."""
    from io import StringIO

    from django.core.management.base import CommandError

    def run(*checkpoints):
        out = StringIO()
        args = ["verify", "--no-progress"]
        for c in checkpoints:
            args += ["--checkpoint", str(c)]
        try:
            call_command("ledger", *args, stdout=out)
        except CommandError as exc:
            return False, str(exc)
        return True, out.getvalue()

    return run


@pytest.fixture
def own_key(settings, signing_key_dir, tmp_path):
    """A copy of the session's signing key that this test may rotate (the session key stays put)."""
    path = tmp_path / "own-key" / "ledger.key"
    path.parent.mkdir()
    path.write_bytes(signing_key_dir.read_bytes())
    path.chmod(0o600)
    settings.CUSTOS_SIGNING_KEY_FILE = str(path)
    return path
