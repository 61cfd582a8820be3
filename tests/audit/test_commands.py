"""`manage.py ledger keys …`, `ledger checkpoint`, the beat task and the signing-key health check."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.keys import signing_key
from audit.models import Checkpoint, LedgerEntry
from audit.tasks import checkpoint_task


def run(*args):
    out = StringIO()
    call_command("ledger", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_keys_generate_refuses_to_overwrite(db, settings, tmp_path):
    settings.CUSTOS_SIGNING_KEY_FILE = str(tmp_path / "k" / "ledger.key")
    assert "Created signing key custos.local/ledger+" in run("keys", "generate")
    key_id = signing_key().key_id
    assert key_id in run("keys", "generate", "--if-missing")
    with pytest.raises(CommandError, match="refusing to overwrite"):
        run("keys", "generate")
    assert oct(Path(settings.CUSTOS_SIGNING_KEY_FILE).stat().st_mode & 0o777) == "0o600"


def test_rotate_list_and_revoke(own_key, append, settings):
    append(2)
    old = signing_key()
    out = run("keys", "rotate")
    new = signing_key()
    assert new.key_id != old.key_id and f"from key {old.key_id} to {new.key_id}" in out
    assert not Path(settings.CUSTOS_SIGNING_KEY_FILE + ".next").exists()
    listed = run("keys", "list")
    assert f"{old.verifier_key}  retired" in listed and f"{new.verifier_key}  active" in listed
    run("keys", "revoke", old.key_id, "--reason", "compromised laptop")
    assert f"{old.verifier_key}  revoked" in run("keys", "list")
    assert LedgerEntry.objects.filter(kind="ledger.key_revoked").count() == 1
    with pytest.raises(CommandError, match="active"):
        run("keys", "revoke", new.key_id, "--reason", "x")
    assert "OK:" in run("verify", "--no-progress")


def test_checkpoint_command_prints_and_exports_the_note(append, settings):
    append(2)
    out = run("checkpoint")
    assert out == Checkpoint.objects.get().note
    assert (Path(settings.CUSTOS_CHECKPOINT_DIR) / "latest").read_text() == out


def test_beat_runs_the_checkpoint_task(append, settings):
    assert settings.CELERY_BEAT_SCHEDULE["ledger-checkpoint"]["task"] == "audit.checkpoint"
    append(3)
    assert checkpoint_task.delay().get() == 4
    assert Checkpoint.objects.get().tree_size == 4


def test_healthz_reports_the_signing_key_without_leaking_it(client, db, settings, tmp_path):
    body = client.get("/healthz").json()
    assert body["checks"]["signing_key"] == "ok"
    settings.CUSTOS_SIGNING_KEY_FILE = str(tmp_path / "secret-place" / "missing.key")
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["checks"]["signing_key"] == "fail"
    assert b"secret-place" not in response.content and b"missing.key" not in response.content
