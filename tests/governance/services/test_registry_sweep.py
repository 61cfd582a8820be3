"""Sweeping stored files that no record names (left by uploads whose process died mid-rollback)."""

import io
import os
import time

import pytest
from django.core.management import CommandError, call_command

from audit.models import LedgerEntry
from governance.selectors.snapshots import snapshot_frame
from governance import storage
from governance.storage import artifacts
from governance.services.registry import storage_sweep


def orphan(write, *, age_minutes):
    """A file written as an upload writes it, whose row never committed, last touched AGE_MINUTES ago."""
    rel = write()
    then = time.time() - age_minutes * 60
    os.utime(storage.storage_root() / rel, (then, then))
    return rel


@pytest.fixture
def leftovers(credit_model_version):
    """Two old unnamed files (a snapshot and an artifact), one fresh one, beside named ones."""
    old_snapshot = orphan(lambda: storage.snapshot_write(io.BytesIO(b"id,x\n1,2\n"))[0], age_minutes=120)
    old_artifact = orphan(lambda: artifacts.artifact_write(b"not a model"), age_minutes=90)
    fresh = orphan(lambda: storage.snapshot_write(io.BytesIO(b"id,x\n3,4\n"))[0], age_minutes=1)
    named = [credit_model_version.artifact_path, credit_model_version.training_run.inputs.first().dataset_version.stored_path]
    for rel in named:  # named files, however old, are never touched
        os.utime(storage.storage_root() / rel, (time.time() - 86400, time.time() - 86400))
    return {"old": sorted([old_snapshot, old_artifact]), "fresh": fresh, "named": named}


def test_sweep_removes_old_unnamed_files_only_and_ledgers_it(leftovers, credit_model_version):
    root = storage.storage_root()
    assert sorted(storage_sweep(dry_run=True)["files"]) == leftovers["old"]
    assert all((root / rel).exists() for rel in leftovers["old"])  # a dry run removes nothing
    assert not LedgerEntry.objects.filter(kind="registry.storage_swept").exists()

    result = storage_sweep()
    assert sorted(result["files"]) == leftovers["old"] and result["bytes"] > 0
    assert not any((root / rel).exists() for rel in leftovers["old"])
    assert (root / leftovers["fresh"]).exists()
    assert all((root / rel).exists() for rel in leftovers["named"])
    dv = credit_model_version.training_run.inputs.first().dataset_version
    assert len(snapshot_frame(dv)) > 0  # the named snapshot still reads
    entry = LedgerEntry.objects.get(kind="registry.storage_swept")
    assert entry.payload == {"files": 2, "bytes": result["bytes"], "older_than_seconds": 3600}
    assert storage_sweep()["files"] == []  # nothing left to sweep


def test_sweep_command(leftovers, capsys):
    call_command("registry", "sweep", "--dry-run")
    out = capsys.readouterr().out
    assert all(f"would remove {rel}" in out for rel in leftovers["old"]) and "dry run: nothing removed" in out
    call_command("registry", "sweep", "--older-than", "100")  # the 120-minute snapshot, not the 90-minute artifact
    out = capsys.readouterr().out
    snapshot, artifact = (rel for prefix in ("snapshots/", "artifacts/") for rel in leftovers["old"] if rel.startswith(prefix))
    assert "1 unnamed file(s)" in out and f"removed {snapshot}" in out and artifact not in out
    with pytest.raises(CommandError, match="older than a minute"):
        call_command("registry", "sweep", "--older-than", "0")
