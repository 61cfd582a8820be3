import io

import pandas as pd
import pytest
from django.core.exceptions import ImproperlyConfigured

from governance import storage
from governance.credit import german_credit_frame
from governance.models import SnapshotKey
from governance.services.registry import snapshot_key_destroy


def test_encrypt_round_trips_across_chunk_boundaries():
    key = bytes(range(32))
    for size in (0, 1, storage.CHUNK - 1, storage.CHUNK, storage.CHUNK + 1, 3 * storage.CHUNK + 17):
        plain = bytes((i * 7) % 251 for i in range(size))
        out = io.BytesIO()
        result = storage.encrypt_stream(io.BytesIO(plain), out, key)
        assert result.size == size
        out.seek(0)
        assert b"".join(storage.decrypt_chunks(out, key)) == plain


def test_truncated_reordered_or_altered_ciphertext_is_refused():
    key = bytes(32)
    plain = b"x" * (2 * storage.CHUNK + 5)
    out = io.BytesIO()
    storage.encrypt_stream(io.BytesIO(plain), out, key)
    data = out.getvalue()
    one_chunk = storage.HEADER_LEN + 4 + storage.CHUNK + 16
    for bad in (data[:one_chunk], data[:-1], data[:100] + bytes([data[100] ^ 1]) + data[101:]):
        with pytest.raises(storage.SnapshotUnreadable):
            b"".join(storage.decrypt_chunks(io.BytesIO(bad), key))
    with pytest.raises(storage.SnapshotUnreadable):
        b"".join(storage.decrypt_chunks(io.BytesIO(data), bytes([1]) * 32))


def test_size_limit_stops_the_stream():
    with pytest.raises(ValueError, match="limit"):
        storage.encrypt_stream(io.BytesIO(b"a" * 100), io.BytesIO(), bytes(32), max_bytes=99)


def test_stored_snapshot_is_encrypted_at_rest_and_round_trips(german_credit_version, german_credit_csv, settings):
    plain = german_credit_csv.read_bytes()
    stored = (storage.storage_root() / german_credit_version.stored_path).read_bytes()
    assert stored.startswith(storage.MAGIC)
    assert b"applicant-0001" not in stored and plain[:200] not in stored
    assert storage.snapshot_bytes(german_credit_version) == plain
    df = storage.dataset_version_dataframe(german_credit_version)
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
    assert list(storage.dataset_version_dataframe(pq_dv)["applicant_id"][:2]) == ["applicant-0001", "applicant-0002"]


def test_destroying_the_data_key_makes_the_snapshot_unreadable(german_credit_version, make_user, unit):
    from audit.models import LedgerEntry
    from governance import roles

    officer = make_user(roles.COMPLIANCE_OFFICER, [unit])
    key = snapshot_key_destroy(dataset_version=german_credit_version, reason="erasure request 7", actor=officer)
    assert key.destroyed_at is not None
    assert SnapshotKey.objects.get(pk=key.pk).wrapped_key is None
    with pytest.raises(storage.SnapshotUnreadable, match="destroyed"):
        storage.dataset_version_dataframe(german_credit_version)
    entry = LedgerEntry.objects.get(kind="registry.snapshot_key_destroyed")
    assert entry.subject == german_credit_version.ledger_subject
    assert entry.payload["reason"] == "erasure request 7" and entry.actor == officer.username


def test_destroy_needs_the_permission_in_that_unit(german_credit_version, make_user, unit, other_unit):
    from django.core.exceptions import PermissionDenied

    from governance import roles

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
