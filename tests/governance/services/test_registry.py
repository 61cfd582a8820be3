import hashlib
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.canonical import canonical_json
from audit.models import LedgerEntry
from governance.selectors.snapshots import snapshot_bytes
from governance import storage
from governance.demo import credit
from governance.rules import roles
from governance.models import (
    CodeVersion,
    Dataset,
    DatasetVersion,
    ImmutableError,
    MLModel,
    ModelVersion,
    SnapshotKey,
    SubjectIndexEntry,
    TrainingRun,
)
from governance.services.registry import (
    DuplicateVersion,
    UploadTooLarge,
    code_version_register,
    dataset_create,
    dataset_version_reference,
    dataset_version_upload,
    model_create,
    model_version_register,
    training_run_register,
)
from governance.storage.subjects import subject_key


def _entry(kind):
    return LedgerEntry.objects.get(kind=kind)


def _stored_files():
    root = storage.storage_root()
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _state():
    return (
        DatasetVersion.objects.count(),
        SnapshotKey.objects.count(),
        SubjectIndexEntry.objects.count(),
        ModelVersion.objects.count(),
        LedgerEntry.objects.count(),
        len(_stored_files()),
    )


def test_upload_ledgers_hash_rows_schema_and_indexes_every_subject(unit, make_user, german_credit_csv):
    scientist = make_user(roles.DATA_SCIENTIST, [unit])
    dataset = dataset_create(business_unit=unit, name="german-credit", actor=scientist)
    assert _entry("registry.dataset_created").subject == dataset.ledger_subject
    dv = dataset_version_upload(
        dataset=dataset,
        version="2024-01",
        file=german_credit_csv,
        file_format="csv",
        subject_column="applicant_id",
        personal_columns=credit.PERSONAL_COLUMNS,
        sensitive_columns=credit.SENSITIVE_COLUMNS,
        actor=scientist,
    )
    plain = german_credit_csv.read_bytes()
    assert dv.sha256 == hashlib.sha256(plain).hexdigest() and dv.size_bytes == len(plain)
    assert dv.row_count == 1000
    assert [c["name"] for c in dv.schema] == list(credit.german_credit_frame().columns)
    entry = _entry("registry.dataset_version_stored")
    assert entry.subject == dv.ledger_subject and entry.actor == scientist.username
    assert entry.payload["sha256"] == dv.sha256 and entry.payload["row_count"] == 1000
    assert entry.payload["schema_sha256"] == hashlib.sha256(canonical_json(dv.schema)).hexdigest()
    assert entry.payload["indexed_subjects"] == 1000
    assert "applicant-0001" not in str(entry.payload)
    # One index row per subject, found by keyed hash of the normalised id.
    assert SubjectIndexEntry.objects.filter(dataset_version=dv).count() == 1000
    hit = SubjectIndexEntry.objects.get(subject_key=subject_key("  APPLICANT-0042 "))
    assert hit.dataset_version == dv and hit.row_count == 1


def test_versions_are_immutable(german_credit_version):
    german_credit_version.version = "changed"
    with pytest.raises(ImmutableError):
        german_credit_version.save()


BAD_CSVS = {
    "truncated row": b"applicant_id,sex,age\na-1,male,30\na-2,fem",
    "empty": b"",
    "header only": b"applicant_id,sex,age\n",
    "binary": bytes(range(256)) * 10,
}


@pytest.mark.parametrize("name", list(BAD_CSVS))
def test_bad_csv_is_refused_and_nothing_is_stored(unit, tmp_path, name):
    dataset = dataset_create(business_unit=unit, name="d")
    before = _state()
    path = tmp_path / "bad.csv"
    path.write_bytes(BAD_CSVS[name])
    with pytest.raises(ValidationError):
        dataset_version_upload(dataset=dataset, version="v1", file=path, file_format="csv", subject_column="applicant_id")
    assert _state() == before


def test_truncated_parquet_is_refused(unit, tmp_path):
    dataset = dataset_create(business_unit=unit, name="d")
    path = tmp_path / "g.parquet"
    credit.german_credit_frame().to_parquet(path)
    path.write_bytes(path.read_bytes()[:-100])
    before = _state()
    with pytest.raises(ValidationError, match="PARQUET"):
        dataset_version_upload(dataset=dataset, version="v1", file=path, file_format="parquet")
    assert _state() == before


def test_missing_declared_column_is_named(unit, german_credit_csv):
    dataset = dataset_create(business_unit=unit, name="d")
    before = _state()
    with pytest.raises(ValidationError, match="ethnicity"):
        dataset_version_upload(
            dataset=dataset, version="v1", file=german_credit_csv, file_format="csv",
            subject_column="applicant_id", sensitive_columns=["sex", "ethnicity"],
        )
    assert _state() == before


def test_duplicate_version_and_oversized_upload_are_refused(german_credit_version, german_credit_csv):
    dataset = german_credit_version.dataset
    before = _state()
    with pytest.raises(DuplicateVersion):
        dataset_version_upload(dataset=dataset, version="v1", file=german_credit_csv, file_format="csv")
    with pytest.raises(UploadTooLarge, match="limit"):
        dataset_version_upload(dataset=dataset, version="v2", file=german_credit_csv, file_format="csv", max_bytes=1000)
    # A stream without a known size is stopped while it is encrypted.
    stream = io.BytesIO(german_credit_csv.read_bytes())
    with pytest.raises(UploadTooLarge, match="limit"):
        dataset_version_upload(dataset=dataset, version="v3", file=stream, file_format="csv", max_bytes=1000)
    assert _state() == before


def test_a_failing_ledger_append_leaves_no_orphan_file(unit, german_credit_csv, settings):
    dataset = dataset_create(business_unit=unit, name="d")
    before = _state()
    settings.CUSTOS_SIGNING_KEY_FILE = ""  # the ledger cannot sign: the whole upload must undo
    with pytest.raises(Exception, match="CUSTOS_SIGNING_KEY_FILE"):
        dataset_version_upload(dataset=dataset, version="v1", file=german_credit_csv, file_format="csv")
    assert _state() == before


def test_reference_by_uri_and_hash(unit):
    dataset = dataset_create(business_unit=unit, name="d")
    dv = dataset_version_reference(
        dataset=dataset, version="v1", uri="s3://bucket/credit.parquet", sha256="AB" * 32,
        schema=[{"name": "applicant_id", "type": "string"}], subject_column="applicant_id",
    )
    assert dv.storage == "external" and dv.sha256 == "ab" * 32
    entry = _entry("registry.dataset_version_referenced")
    assert entry.subject == dv.ledger_subject and entry.payload["sha256"] == "ab" * 32
    with pytest.raises(ValidationError, match="sha256"):
        dataset_version_reference(dataset=dataset, version="v2", uri="s3://b/k", sha256="nothex")
    with pytest.raises(ValidationError, match="ssn"):
        dataset_version_reference(
            dataset=dataset, version="v2", uri="s3://b/k", sha256="a" * 64,
            schema=[{"name": "x", "type": "int"}], personal_columns=["ssn"],
        )


@pytest.mark.parametrize(
    "uri",
    [
        "https://bucket.s3.amazonaws.com/credit.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA&X-Amz-Signature=abc",
        "https://storage.googleapis.com/b/credit.csv?X-Goog-Signature=abc",
        "https://acct.blob.core.windows.net/c/credit.csv?sv=2022-11-02&sig=abc",
        "postgres://etl:hunter2@db.internal/credit",
    ],
)
def test_a_reference_uri_carrying_credentials_is_refused(unit, uri):
    """The URI is stored and shown to every reader: a presigned URL or a password in it is a
    secret in the database."""
    dataset = dataset_create(business_unit=unit, name="d")
    with pytest.raises(ValidationError, match="credentials"):
        dataset_version_reference(dataset=dataset, version="v1", uri=uri, sha256="a" * 64)
    assert not DatasetVersion.objects.exists()
    ok = dataset_version_reference(
        dataset=dataset, version="v1", uri="https://bucket.s3.amazonaws.com/credit.csv?versionId=3", sha256="a" * 64
    )
    assert ok.uri.endswith("versionId=3")


def test_model_version_and_training_run_are_ledgered(credit_model_version, credit_model_artifact):
    mv = credit_model_version
    data = credit_model_artifact[0]
    assert mv.artifact_sha256 == hashlib.sha256(data).hexdigest() and mv.artifact_format == "skops"
    entry = _entry("registry.model_version_registered")
    assert entry.subject == mv.ledger_subject and entry.payload["artifact_sha256"] == mv.artifact_sha256
    model_entry = _entry("registry.model_created")
    assert model_entry.payload["risk_tier"] == "high" and model_entry.payload["annex_iii_category"] == "creditworthiness"
    run = TrainingRun.objects.get(model_version=mv)
    run_entry = _entry("registry.training_run_registered")
    assert run_entry.subject == run.ledger_subject
    assert run_entry.payload["inputs"][0]["role"] == "train"
    assert run_entry.payload["seeds"] == {"random_state": 0}
    assert run_entry.payload["library_versions"]["scikit-learn"]
    code = CodeVersion.objects.get()
    assert _entry("registry.code_version_registered").subject == code.ledger_subject


def test_refused_artifact_leaves_nothing(unit, credit_model_artifact):
    model = model_create(business_unit=unit, name="m", intended_purpose="p", risk_tier="minimal")
    before = _state()
    with pytest.raises(ValidationError, match="does not load"):
        model_version_register(model=model, version="1", artifact=b"garbage", artifact_format="skops")
    with pytest.raises(ValidationError, match="refused"):
        model_version_register(model=model, version="1", artifact=b"garbage", artifact_format="pickle")
    with pytest.raises(UploadTooLarge, match="limit"):
        model_version_register(model=model, version="1", artifact=credit_model_artifact[0], artifact_format="skops", max_bytes=10)
    assert _state() == before
    model_version_register(model=model, version="1", artifact=credit_model_artifact[0], artifact_format="skops")
    with pytest.raises(DuplicateVersion):
        model_version_register(model=model, version="1", artifact=credit_model_artifact[0], artifact_format="skops")


def test_high_risk_needs_annex_iii_category(unit):
    with pytest.raises(ValidationError, match="Annex III"):
        model_create(business_unit=unit, name="m", intended_purpose="p", risk_tier="high")
    with pytest.raises(ValidationError, match="Annex III"):
        model_create(business_unit=unit, name="m", intended_purpose="p", risk_tier="minimal", annex_iii_category="employment")
    assert not MLModel.objects.exists()


def test_training_run_refuses_other_units_and_bad_json(unit, other_unit, make_german_credit_version):
    mine = make_german_credit_version(unit)
    theirs = make_german_credit_version(other_unit)
    with pytest.raises(ValidationError, match="another business unit"):
        training_run_register(business_unit=unit, inputs=[(theirs, "train")])
    with pytest.raises(ValidationError, match="role"):
        training_run_register(business_unit=unit, inputs=[(mine, "bogus")])
    with pytest.raises(ValidationError, match="NaN"):
        training_run_register(business_unit=unit, inputs=[(mine, "train")], metrics={"auc": float("nan")})
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("role", [roles.DATA_SCIENTIST, roles.PIPELINE])
def test_registering_roles_can_write_only_in_their_units(unit, other_unit, make_user, role):
    user = make_user(role, [unit])
    dataset_create(business_unit=unit, name="mine", actor=user)
    with pytest.raises(PermissionDenied):
        dataset_create(business_unit=other_unit, name="theirs", actor=user)
    with pytest.raises(PermissionDenied):
        code_version_register(business_unit=other_unit, repository_url="r", commit_sha="a" * 40, actor=user)
    with pytest.raises(PermissionDenied):
        model_create(business_unit=other_unit, name="m", intended_purpose="p", risk_tier="minimal", actor=user)


@pytest.mark.parametrize("role", [roles.COMPLIANCE_OFFICER, roles.MODEL_RISK_VALIDATOR, roles.AUDITOR])
def test_reviewing_roles_cannot_register(unit, make_user, role):
    user = make_user(role, [unit])
    with pytest.raises(PermissionDenied):
        dataset_create(business_unit=unit, name="d", actor=user)
    assert not Dataset.objects.exists()


def test_fast_hmac_equals_the_standard_library():
    import hmac as std_hmac

    from governance.storage.subjects import hmac_sha256_hex

    for key in (b"k", bytes(32), bytes(range(64)), bytes(100)):
        mac = hmac_sha256_hex(key)
        for msg in (b"", b"applicant-0001", "é".encode() * 50):
            assert mac(msg) == std_hmac.new(key, msg, "sha256").hexdigest()


def test_non_ascii_ids_are_normalised_like_ascii_ones(unit, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("applicant_id,x\nSTRASSE-1,1\n strasse-1 ,2\nStraße-1,3\nＡ-2,4\n", encoding="utf-8")
    dataset = dataset_create(business_unit=unit, name="d")
    dv = dataset_version_upload(dataset=dataset, version="v1", file=path, file_format="csv", subject_column="applicant_id")
    assert SubjectIndexEntry.objects.get(subject_key=subject_key("strasse-1"), dataset_version=dv).row_count == 3
    assert SubjectIndexEntry.objects.get(subject_key=subject_key("a-2")).row_count == 1


def test_every_registry_entry_signs_its_payload(credit_model_version):
    """The entry hash covers the payload: recompute it from the stored fields for each kind."""
    from audit.chain import TIME_FORMAT, entry_content
    from audit.merkle import leaf_hash

    entries = list(LedgerEntry.objects.filter(kind__startswith="registry."))
    assert {e.kind for e in entries} == {
        "registry.dataset_created",
        "registry.dataset_version_stored",
        "registry.model_created",
        "registry.code_version_registered",
        "registry.model_version_registered",
        "registry.training_run_registered",
    }
    for e in entries:
        content = entry_content(
            seq=e.seq, created_at=e.created_at, kind=e.kind, subject=e.subject, actor=e.actor,
            payload=e.payload, prev_hash=bytes(e.prev_hash), key_id=e.key_id,
        )
        assert content["time"] == e.created_at.strftime(TIME_FORMAT)
        assert leaf_hash(canonical_json(content)) == bytes(e.entry_hash)
        tampered = entry_content(
            seq=e.seq, created_at=e.created_at, kind=e.kind, subject=e.subject, actor=e.actor,
            payload={**e.payload, "extra": 1}, prev_hash=bytes(e.prev_hash), key_id=e.key_id,
        )
        assert leaf_hash(canonical_json(tampered)) != bytes(e.entry_hash)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_upload_is_its_own_transaction_and_a_refused_wrapping_leaves_no_file(
    unit, german_credit_csv, credit_model_artifact
):
    """Uploads are durable entry points: wrapped in a caller's transaction they refuse to run
    (their file would otherwise outlive a rollback of the caller's), and leave nothing behind."""
    from django.db import transaction

    dataset = dataset_create(business_unit=unit, name="d")
    model = model_create(
        business_unit=unit, name="m", intended_purpose="Score.", risk_tier="high", annex_iii_category="creditworthiness"
    )
    before = _state()
    with pytest.raises(RuntimeError, match="durable"):
        with transaction.atomic():
            dataset_version_upload(dataset=dataset, version="v1", file=german_credit_csv, file_format="csv")
    with pytest.raises(RuntimeError, match="durable"):
        with transaction.atomic():
            model_version_register(model=model, version="1", artifact=credit_model_artifact[0], artifact_format="skops")
    assert _state() == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_file_written_in_a_transaction_goes_when_it_rolls_back(tmp_path):
    """``remove_on_rollback`` (for services that compose, such as erasure writing a successor
    snapshot inside its step): a file named in a transaction that rolls back is removed, a
    savepoint's only with its savepoint, a committed one stays."""
    import gc

    from django.db import transaction

    from governance.services.files import remove_on_rollback

    def written(name):
        path = tmp_path / name
        path.write_bytes(b"ciphertext")
        remove_on_rollback(path)
        return path

    with pytest.raises(RuntimeError), transaction.atomic():
        doomed = written("doomed")
        raise RuntimeError("the caller changes its mind")
    gc.collect()
    assert not doomed.exists()
    with transaction.atomic():
        kept = written("kept")
        with pytest.raises(RuntimeError), transaction.atomic():
            dropped = written("dropped")
            raise RuntimeError
    gc.collect()
    assert kept.exists() and not dropped.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_files_of_committed_uploads_stay(unit, german_credit_csv, credit_model_artifact):
    from django.db import transaction

    dataset = dataset_create(business_unit=unit, name="d")
    model = model_create(business_unit=unit, name="m", intended_purpose="Score.", risk_tier="minimal")
    dv = dataset_version_upload(dataset=dataset, version="v1", file=german_credit_csv, file_format="csv")
    mv = model_version_register(model=model, version="1", artifact=credit_model_artifact[0], artifact_format="skops")
    import gc

    gc.collect()
    assert snapshot_bytes(dv) == german_credit_csv.read_bytes()
    from governance.storage import artifacts

    assert artifacts.artifact_bytes(mv) == credit_model_artifact[0]
