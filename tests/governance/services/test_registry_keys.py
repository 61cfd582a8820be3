"""Stored snapshots and their keys: encryption at rest, destroying a data key, rotating the master key."""

import io

import pandas as pd
import pytest
from django.core.exceptions import ImproperlyConfigured

from governance.selectors.snapshots import snapshot_bytes, snapshot_frame
from governance import storage
from governance.demo.credit import german_credit_frame
from governance.models import SnapshotKey
from governance.services.registry import snapshot_key_destroy



def test_stored_snapshot_is_encrypted_at_rest_and_round_trips(german_credit_version, german_credit_csv, settings):
    plain = german_credit_csv.read_bytes()
    stored = (storage.storage_root() / german_credit_version.stored_path).read_bytes()
    assert stored.startswith(storage.MAGIC)
    assert b"applicant-0001" not in stored and plain[:200] not in stored
    assert snapshot_bytes(german_credit_version) == plain
    df = snapshot_frame(german_credit_version)
    pd.testing.assert_frame_equal(df, german_credit_frame())


def test_parquet_snapshot_dataframe(make_german_credit_version, unit, tmp_path):
    path = tmp_path / "g.parquet"
    german_credit_frame().to_parquet(path)
    from governance.models import Dataset
    from governance.services.registry import dataset_version_upload

    dv = make_german_credit_version(unit, version="csv")
    pq_dv = dataset_version_upload(
        dataset=Dataset.objects.get(pk=dv.dataset_id), version="pq", file=path, file_format="parquet",
        subject_column="applicant_id",
    )
    assert pq_dv.row_count == 1000
    assert list(snapshot_frame(pq_dv)["applicant_id"][:2]) == ["applicant-0001", "applicant-0002"]


def test_destroying_the_data_key_makes_the_snapshot_unreadable(german_credit_version, make_user, unit):
    from audit.models import LedgerEntry
    from governance.rules import roles

    officer = make_user(roles.COMPLIANCE_OFFICER, [unit])
    key = snapshot_key_destroy(dataset_version=german_credit_version, reason="erasure request 7", actor=officer)
    assert key.destroyed_at is not None
    assert SnapshotKey.objects.get(pk=key.pk).wrapped_key is None
    with pytest.raises(storage.SnapshotUnreadable, match="destroyed"):
        snapshot_frame(german_credit_version)
    entry = LedgerEntry.objects.get(kind="registry.snapshot_key_destroyed")
    assert entry.subject == german_credit_version.ledger_subject
    assert entry.payload["reason"] == "erasure request 7" and entry.actor == officer.username


def test_destroy_needs_the_permission_in_that_unit(german_credit_version, make_user, unit, other_unit):
    from django.core.exceptions import PermissionDenied

    from governance.rules import roles

    for user in (make_user(roles.DATA_SCIENTIST, [unit]), make_user(roles.COMPLIANCE_OFFICER, [other_unit])):
        with pytest.raises(PermissionDenied):
            snapshot_key_destroy(dataset_version=german_credit_version, reason="x", actor=user)
    assert SnapshotKey.objects.get(dataset_version=german_credit_version).wrapped_key is not None


def test_missing_or_malformed_master_key_is_a_configuration_error(settings):
    settings.CUSTOS_MASTER_KEY_FILE = ""
    settings.CUSTOS_MASTER_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="CUSTOS_MASTER_KEY"):
        storage.master_key()
    settings.CUSTOS_MASTER_KEY = "c2hvcnQ="
    with pytest.raises(ImproperlyConfigured, match="32 bytes"):
        storage.master_key()


def test_master_key_rotation_rewraps_live_keys_and_retires_the_old_key(
    settings, tmp_path, storage_key_files, make_german_credit_version, unit, make_user
):
    import shutil

    from django.core.management import call_command

    from audit.models import LedgerEntry

    master = tmp_path / "master.key"
    shutil.copy(storage_key_files[0], master)  # never rotate the session's key
    settings.CUSTOS_MASTER_KEY_FILE = str(master)
    live = make_german_credit_version(unit, version="live")
    erased = make_german_credit_version(unit, version="erased")
    snapshot_key_destroy(dataset_version=erased, reason="erasure", actor=None)
    old_key = storage.master_key()
    old_wrapped = bytes(SnapshotKey.objects.get(dataset_version=live).wrapped_key)

    call_command("registry", "keys", "rotate-master")

    new_key = storage.master_key()
    assert new_key != old_key and not (tmp_path / "master.key.new").exists()
    key = SnapshotKey.objects.get(dataset_version=live)
    assert key.master_key_id == storage.key_id(new_key) and bytes(key.wrapped_key) != old_wrapped
    assert snapshot_frame(live).shape == (1000, 11)
    # A backup of the old wrapped key is useless without the old master key, which is gone.
    with pytest.raises(storage.SnapshotUnreadable):
        storage.unwrap_data_key(old_wrapped, storage.key_id(old_key))
    entry = LedgerEntry.objects.get(kind="registry.master_key_rotated")
    assert entry.payload == {
        "old_key_id": storage.key_id(old_key), "new_key_id": storage.key_id(new_key), "rewrapped_data_keys": 1
    }
    with pytest.raises(Exception, match="administrators"):
        from governance.services.registry import master_key_rotate

        master_key_rotate(actor=make_user("Compliance Officer", [unit]))


def test_interrupted_rotation_still_reads_and_resumes(settings, tmp_path, storage_key_files, make_german_credit_version, unit):
    import shutil

    from governance.services.registry import master_key_rotate

    master = tmp_path / "master.key"
    shutil.copy(storage_key_files[0], master)
    settings.CUSTOS_MASTER_KEY_FILE = str(master)
    dv = make_german_credit_version(unit)
    storage.generate_key_file(tmp_path / "master.key.new")  # a rotation that stopped before its transaction
    assert len(storage.master_keys()) == 2
    assert snapshot_frame(dv).shape[0] == 1000
    result = master_key_rotate()
    assert result["rewrapped_data_keys"] == 1
    assert snapshot_frame(dv).shape[0] == 1000


def test_healthz_reports_the_storage_keys_without_leaking_them(client, db, settings, tmp_path):
    """A missing master or index key makes every upload and lookup fail: /healthz must say so."""
    assert client.get("/healthz").json()["checks"]["storage_keys"] == "ok"
    settings.CUSTOS_MASTER_KEY_FILE = str(tmp_path / "secret-place" / "missing.key")
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["checks"]["storage_keys"] == "fail"
    assert b"secret-place" not in response.content and b"missing.key" not in response.content
