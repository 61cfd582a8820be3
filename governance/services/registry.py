"""Register datasets, logged snapshots, code, models, model versions and training runs.

Each service checks that the actor holds the role permission and write access to the
business unit, changes state and appends its ledger entry in one transaction. Files (the
encrypted snapshot, the artifact) are written before the rows; if anything fails the file is
removed again, so a refused upload leaves no file, row or ledger entry behind; so is a file
whose row a caller's enclosing transaction rolls back (``services.files.remove_on_rollback``).
"""

import hashlib
import os
import re
from datetime import timedelta
from itertools import islice
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.canonical import canonical_json
from audit.services import ledger_append
from config.errors import Conflict, TooLarge

from ..rules import erasure as erasure_rules
from ..rules.kinds import GovernanceKind
from ..rules.limits import quoted_list
from .. import storage
from ..storage import artifacts
from ..models import (
    CodeVersion,
    ErasureRequest,
    Dataset,
    DatasetVersion,
    MLModel,
    ModelVersion,
    RiskTier,
    SnapshotKey,
    SubjectIndexEntry,
    TrainingRun,
    TrainingRunInput,
)
from .files import remove_on_rollback
from .guards import recorded_user, require
from ..storage.subjects import index_key

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
COMMIT_RE = re.compile(r"^[0-9a-f]{7,64}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
INDEX_BATCH = 50_000
SUBJECT_COLUMN_MAX = DatasetVersion._meta.get_field("subject_column").max_length


class DuplicateVersion(Conflict):
    """The version is already registered; versions are immutable, register a new one."""


class UploadTooLarge(TooLarge):
    """The snapshot (CUSTOS_MAX_UPLOAD_BYTES) or artifact (CUSTOS_MAX_ARTIFACT_BYTES) is too large."""


def _too_large(limit):
    return UploadTooLarge(f"The upload is larger than the limit of {limit} bytes.")


def _digest(value) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _unique_columns(columns, what):
    columns = [c for c in (columns or []) if c]
    if len(set(columns)) != len(columns):
        raise ValidationError(f"{what} lists a column twice.")
    return columns


# --- datasets --------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def dataset_create(*, business_unit, name: str, description: str = "", actor=None) -> Dataset:
    """Create a dataset (a name) in BUSINESS_UNIT; its content is registered as versions."""
    require(actor, "governance.add_dataset", business_unit)
    if Dataset.objects.filter(business_unit=business_unit, name=name).exists():
        raise DuplicateVersion(f"Dataset {name!r} already exists in {business_unit.slug!r}.", field="name")
    dataset = Dataset(business_unit=business_unit, name=name, description=description, created_by=recorded_user(actor))
    dataset.full_clean()
    dataset.save()
    ledger_append(
        kind=GovernanceKind.DATASET_CREATED,
        subject=dataset.ledger_subject,
        payload={"business_unit_id": business_unit.pk, "name": name},
        actor=actor,
    )
    return dataset


def _check_new_version(dataset, version):
    if not version or len(version) > 100:
        raise ValidationError("A version is 1 to 100 characters.")
    if DatasetVersion.objects.filter(dataset=dataset, version=version).exists():
        raise DuplicateVersion(
            f"Version {version!r} of dataset {dataset.name!r} is already registered; versions are immutable."
        )


def dataset_version_upload(
    *,
    dataset: Dataset,
    version: str,
    file,
    file_format: str,
    subject_column: str = "",
    personal_columns=(),
    sensitive_columns=(),
    actor=None,
    max_bytes: int | None = None,
) -> DatasetVersion:
    """Store a snapshot (CSV or Parquet) encrypted with a new data key and index its subjects.

    FILE is a path or a binary file object that can seek. The file is read twice, in bounded
    memory: once to check it and count rows and subjects, once to hash and encrypt it.
    """
    require(actor, "governance.add_datasetversion", dataset.business_unit)
    _check_new_version(dataset, version)
    if len(subject_column) > SUBJECT_COLUMN_MAX:  # the row is saved without full_clean()
        raise ValidationError(f"subject_column is at most {SUBJECT_COLUMN_MAX} characters.")
    personal_columns = _unique_columns(personal_columns, "personal_columns")
    sensitive_columns = _unique_columns(sensitive_columns, "sensitive_columns")
    max_bytes = settings.CUSTOS_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes

    def source():
        if isinstance(file, str | Path):
            return str(file)
        file.seek(0)
        return file

    size = Path(file).stat().st_size if isinstance(file, str | Path) else None
    if size is not None and size > max_bytes:
        raise _too_large(max_bytes)
    from ..storage.tabular import SnapshotInvalid, inspect_snapshot  # pyarrow: 0.4 s, only for an upload

    try:
        facts = inspect_snapshot(
            source,
            file_format=file_format,
            subject_column=subject_column,
            declared=[*personal_columns, *sensitive_columns],
            index_key=index_key(),
        )
    except SnapshotInvalid as exc:
        raise ValidationError({"file": str(exc)}) from None
    _refuse_erased(facts.subject_counts)

    rel = None
    try:
        src = open(file, "rb") if isinstance(file, str | Path) else source()
        try:
            rel, data_key, result = storage.snapshot_write(src, max_bytes=max_bytes)
        except storage.StreamTooLarge:
            raise _too_large(max_bytes) from None
        finally:
            if isinstance(file, str | Path):
                src.close()
        wrapped, master_key_id = storage.wrap_data_key(data_key)
        with transaction.atomic(durable=True):
            _check_new_version(dataset, version)  # again, under the transaction
            dv = DatasetVersion(
                dataset=dataset,
                version=version,
                storage=DatasetVersion.Storage.STORED,
                file_format=file_format,
                sha256=result.sha256,
                size_bytes=result.size,
                row_count=facts.row_count,
                schema=facts.schema,
                subject_column=subject_column,
                personal_columns=personal_columns,
                sensitive_columns=sensitive_columns,
                stored_path=rel,
                created_by=recorded_user(actor),
            )
            dv.save()
            remove_on_rollback(storage.storage_root() / rel)  # e.g. a caller's outer transaction
            SnapshotKey.objects.create(dataset_version=dv, master_key_id=master_key_id, wrapped_key=wrapped)
            _index_write(dv, facts.subject_counts)
            ledger_append(
                kind=GovernanceKind.DATASET_VERSION_STORED,
                subject=dv.ledger_subject,
                payload={
                    "dataset_id": dataset.pk,
                    "business_unit_id": dataset.business_unit_id,
                    "version": version,
                    "format": file_format,
                    "sha256": result.sha256,
                    "size_bytes": result.size,
                    "row_count": facts.row_count,
                    "schema_sha256": _digest(facts.schema),
                    "subject_column": subject_column,
                    "personal_columns": personal_columns,
                    "sensitive_columns": sensitive_columns,
                    "indexed_subjects": len(facts.subject_counts),
                    "rows_without_subject": facts.rows_without_subject,
                    "master_key_id": master_key_id,
                },
                actor=actor,
            )
    except IntegrityError:
        if rel:
            storage.snapshot_remove(rel)
        raise DuplicateVersion(f"Version {version!r} of dataset {dataset.name!r} is already registered.") from None
    except BaseException:
        if rel:
            storage.snapshot_remove(rel)
        raise
    return dv


class ErasedSubjectConflict(Conflict):
    """The upload holds rows of a person erased (or being erased) under an erasure request."""


def _refuse_erased(subject_counts) -> None:
    """Refuse an upload holding people that erasure requests keep out (GDPR Art. 17: they stay erased).

    The 409 names the requests and counts the rows, never the people. The kept keyed hashes are
    those of requests past identity verification (rules.erasure.KEEPS_OUT_STATES).
    """
    kept = ErasureRequest.objects.unrestricted().filter(
        state__in=sorted(s.value for s in erasure_rules.KEEPS_OUT_STATES), subject_key__isnull=False
    ).values_list("subject_key", "reference")
    matches = [erasure_rules.ErasedMatch(reference, subject_counts[key]) for key, reference in kept
               if subject_counts.get(key)]
    if not matches:
        return
    decision = erasure_rules.reupload_decision(policy=erasure_rules.ReuploadPolicy.REFUSE, matches=matches)
    if not decision.accept:
        raise ErasedSubjectConflict(decision.message)


def _index_write(dv, subject_counts) -> None:
    """Bulk insert the subject index of DV (subject key -> rows).

    One parameterised INSERT run with executemany per batch: the ORM's bulk_create spends
    most of its time building model instances, ten times slower for a million subjects.
    """
    table = connection.ops.quote_name(SubjectIndexEntry._meta.db_table)
    sql = f"INSERT INTO {table} (subject_key, dataset_version_id, row_count) VALUES (%s, %s, %s)"
    # Inserting in key order fills the unique index's B-tree from one end instead of at
    # random places: several times faster for a million keys.
    items = iter(sorted(subject_counts.items()))
    pk = dv.pk
    with connection.cursor() as cursor:
        while batch := [(key, pk, rows) for key, rows in islice(items, INDEX_BATCH)]:
            cursor.executemany(sql, batch)


# Query parameters that make a URL its own credential (presigned S3 and GCS URLs, Azure SAS).
SIGNED_URL_PARAMS = {"x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
                     "x-goog-credential", "sig", "signature", "token", "access_token"}


def _refuse_credentials(uri: str) -> None:
    """Refuse a URI that carries a secret: it would be stored and shown to every reader."""
    parts = urlsplit(uri)
    params = {name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    if parts.password is not None or params & SIGNED_URL_PARAMS:
        raise ValidationError(
            "uri carries credentials (a password or a signed-URL parameter); register the plain "
            "location (e.g. s3://bucket/key) and keep credentials out of Custos."
        )


@transaction.atomic(durable=True)
def dataset_version_reference(
    *,
    dataset: Dataset,
    version: str,
    uri: str,
    sha256: str,
    file_format: str = "",
    row_count: int | None = None,
    size_bytes: int | None = None,
    subject_column: str = "",
    personal_columns=(),
    sensitive_columns=(),
    schema=None,
    actor=None,
) -> DatasetVersion:
    """Register a snapshot kept elsewhere, by URI and its declared SHA-256 (not fetched)."""
    require(actor, "governance.add_datasetversion", dataset.business_unit)
    _check_new_version(dataset, version)
    sha256 = (sha256 or "").lower()
    if not SHA256_RE.match(sha256):
        raise ValidationError("sha256 must be 64 hex digits.")
    if not uri or len(uri) > 1000 or "://" not in uri:
        raise ValidationError("uri must be an absolute URI such as s3://bucket/key.")
    _refuse_credentials(uri)
    personal_columns = _unique_columns(personal_columns, "personal_columns")
    sensitive_columns = _unique_columns(sensitive_columns, "sensitive_columns")
    schema = list(schema or [])
    if schema:
        names = [c.get("name") if isinstance(c, dict) else None for c in schema]
        if not all(isinstance(n, str) and n for n in names):
            raise ValidationError("schema is a list of {name, type} objects.")
        missing = sorted({c for c in [subject_column, *personal_columns, *sensitive_columns] if c} - set(names))
        if missing:
            raise ValidationError(f"Declared column(s) not in the schema: {quoted_list(missing)}.")
    dv = DatasetVersion(
        dataset=dataset,
        version=version,
        storage=DatasetVersion.Storage.EXTERNAL,
        file_format=file_format,
        uri=uri,
        sha256=sha256,
        size_bytes=size_bytes,
        row_count=row_count,
        schema=schema,
        subject_column=subject_column,
        personal_columns=personal_columns,
        sensitive_columns=sensitive_columns,
        created_by=recorded_user(actor),
    )
    dv.full_clean(exclude=["dataset"])
    dv.save()
    ledger_append(
        kind=GovernanceKind.DATASET_VERSION_REFERENCED,
        subject=dv.ledger_subject,
        payload={
            "dataset_id": dataset.pk,
            "business_unit_id": dataset.business_unit_id,
            "version": version,
            "uri_sha256": hashlib.sha256(uri.encode()).hexdigest(),
            "sha256": sha256,
            "row_count": row_count,
            "schema_sha256": _digest(schema),
            "subject_column": subject_column,
        },
        actor=actor,
    )
    return dv


@transaction.atomic(durable=True)
def snapshot_key_destroy(*, dataset_version: DatasetVersion, reason: str, actor=None) -> SnapshotKey:
    """Destroy the data key of a stored snapshot: every copy of its ciphertext becomes unreadable.

    The erasure work calls this after rewriting a snapshot without an erased person's rows.
    """
    require(actor, "governance.destroy_snapshotkey", dataset_version.dataset.business_unit)
    return _snapshot_key_destroy(dataset_version=dataset_version, reason=reason, actor=actor)


@transaction.atomic(savepoint=False)
def _snapshot_key_destroy(*, dataset_version: DatasetVersion, reason: str, actor=None, facts=None) -> SnapshotKey:
    """Destroy the key (the step the erasure workflow composes, having checked its own duties).

    FACTS (counts, hashes, ids of Custos objects) are added to the ledger entry."""
    if not reason:
        raise ValidationError("Say why the key is destroyed.")
    key = SnapshotKey.objects.select_for_update().filter(dataset_version=dataset_version).first()
    if key is None:
        raise ValidationError(f"Dataset version {dataset_version.pk} has no data key (it is not stored by Custos).")
    if key.wrapped_key is None:
        raise ValidationError(f"The data key of dataset version {dataset_version.pk} is already destroyed.")
    key.wrapped_key = None
    key.destroyed_at = timezone.now()
    key.save(update_fields=["wrapped_key", "destroyed_at"])
    ledger_append(
        kind=GovernanceKind.SNAPSHOT_KEY_DESTROYED,
        subject=dataset_version.ledger_subject,
        payload={"snapshot_key_id": key.pk, "sha256": dataset_version.sha256, "reason": reason, **(facts or {})},
        actor=actor,
    )
    return key


def master_key_rotate(*, actor=None) -> dict:
    """Rewrap every live data key under a new master key, then replace the master key file.

    Run it after erasures: a database backup still holds the destroyed wrapped keys, and only
    retiring the master key that wrapped them makes those copies useless. The new key is
    written next to the old one (``<CUSTOS_MASTER_KEY_FILE>.new``) before the transaction, so
    both unwrap while it runs, and renamed over the old file only after it has committed; an
    interrupted rotation is resumed by running it again.
    """
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied("Only administrators may rotate the master key.")
    pending = storage.pending_master_key_path()
    if pending is None:
        raise ValidationError("Master key rotation needs CUSTOS_MASTER_KEY_FILE (a key given inline cannot be replaced).")
    old_id = storage.key_id(storage.master_key())
    if not pending.exists():
        storage.generate_key_file(pending)
    keys = storage.master_keys()
    new_id = next(k for k in keys if k != old_id) if len(keys) > 1 else old_id
    if new_id == old_id:
        raise ValidationError(f"{pending} holds the current master key; remove it and run again.")
    new_key = keys[new_id]
    with transaction.atomic(durable=True):
        rewrapped = 0
        for key in SnapshotKey.objects.select_for_update().filter(wrapped_key__isnull=False).exclude(master_key_id=new_id):
            data_key = storage.unwrap_data_key(key.wrapped_key, key.master_key_id)
            key.wrapped_key, key.master_key_id = storage.wrap_data_key(data_key, master=new_key)
            key.save(update_fields=["wrapped_key", "master_key_id"])
            rewrapped += 1
        ledger_append(
            kind=GovernanceKind.MASTER_KEY_ROTATED,
            subject=f"governance.masterkey:{new_id}",
            payload={"old_key_id": old_id, "new_key_id": new_id, "rewrapped_data_keys": rewrapped},
            actor=actor,
        )
    os.replace(pending, settings.CUSTOS_MASTER_KEY_FILE)  # the old master key is gone from here on
    return {"old_key_id": old_id, "new_key_id": new_id, "rewrapped_data_keys": rewrapped}


# --- code --------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def code_version_register(
    *, business_unit, repository_url: str, commit_sha: str, image_digest: str = "", actor=None
) -> tuple[CodeVersion, bool]:
    """Register the code a run executed; registering the same code again returns the first record."""
    require(actor, "governance.add_codeversion", business_unit)
    commit_sha = commit_sha.lower()
    if not COMMIT_RE.match(commit_sha):
        raise ValidationError("commit_sha must be 7 to 64 hex digits.")
    if image_digest and not DIGEST_RE.match(image_digest):
        raise ValidationError("image_digest must look like sha256:<64 hex digits>.")
    if not repository_url:
        raise ValidationError("repository_url is required.")
    existing = CodeVersion.objects.filter(
        business_unit=business_unit, repository_url=repository_url, commit_sha=commit_sha, image_digest=image_digest
    ).first()
    if existing:
        return existing, False
    code = CodeVersion(
        business_unit=business_unit,
        repository_url=repository_url,
        commit_sha=commit_sha,
        image_digest=image_digest,
        created_by=recorded_user(actor),
    )
    code.full_clean()
    code.save()
    ledger_append(
        kind=GovernanceKind.CODE_VERSION_REGISTERED,
        subject=code.ledger_subject,
        payload={
            "business_unit_id": business_unit.pk,
            "repository_url": repository_url,
            "commit_sha": commit_sha,
            "image_digest": image_digest,
        },
        actor=actor,
    )
    return code, True


# --- models ------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def model_create(
    *,
    business_unit,
    name: str,
    intended_purpose: str,
    risk_tier: str,
    annex_iii_category: str = "",
    owner=None,
    actor=None,
) -> MLModel:
    """Create a model with its intended purpose and EU AI Act classification."""
    require(actor, "governance.add_mlmodel", business_unit)
    if risk_tier == RiskTier.HIGH and not annex_iii_category:
        raise ValidationError("A high-risk model names its Annex III category (e.g. creditworthiness).")
    if risk_tier != RiskTier.HIGH and annex_iii_category:
        raise ValidationError("Only high-risk models have an Annex III category.")
    if MLModel.objects.filter(business_unit=business_unit, name=name).exists():
        raise DuplicateVersion(f"Model {name!r} already exists in {business_unit.slug!r}.")
    model = MLModel(
        business_unit=business_unit,
        name=name,
        intended_purpose=intended_purpose,
        risk_tier=risk_tier,
        annex_iii_category=annex_iii_category,
        owner=owner if owner is not None else recorded_user(actor),
    )
    model.full_clean()
    model.save()
    ledger_append(
        kind=GovernanceKind.MODEL_CREATED,
        subject=model.ledger_subject,
        payload={
            "business_unit_id": business_unit.pk,
            "name": name,
            "risk_tier": risk_tier,
            "annex_iii_category": annex_iii_category,
            "intended_purpose_sha256": hashlib.sha256(intended_purpose.encode()).hexdigest(),
            "owner_id": model.owner_id,
        },
        actor=actor,
    )
    return model


def model_version_register(
    *,
    model: MLModel,
    version: str,
    artifact: bytes,
    artifact_format: str,
    description: str = "",
    actor=None,
    max_bytes: int | None = None,
) -> ModelVersion:
    """Register a model artifact after loading it safely; record its SHA-256 and features."""
    require(actor, "governance.add_modelversion", model.business_unit)
    max_bytes = settings.CUSTOS_MAX_ARTIFACT_BYTES if max_bytes is None else max_bytes
    if not version or len(version) > 100:
        raise ValidationError("A version is 1 to 100 characters.")
    if len(artifact) > max_bytes:
        raise _too_large(max_bytes)
    if not artifact:
        raise ValidationError("The artifact is empty.")
    if ModelVersion.objects.filter(model=model, version=version).exists():
        raise DuplicateVersion(f"Version {version!r} of model {model.name!r} is already registered.")
    try:
        loaded = artifacts.load_artifact_bytes(artifact, artifact_format)
    except artifacts.ArtifactRefused as exc:
        raise ValidationError({"artifact": str(exc)}) from None
    sha256 = hashlib.sha256(artifact).hexdigest()
    rel = artifacts.artifact_write(artifact)
    try:
        with transaction.atomic(durable=True):
            mv = ModelVersion(
                model=model,
                version=version,
                artifact_sha256=sha256,
                artifact_format=artifact_format,
                artifact_size=len(artifact),
                artifact_path=rel,
                framework=loaded.framework,
                framework_version=loaded.framework_version,
                feature_names=loaded.feature_names,
                description=description,
                created_by=recorded_user(actor),
            )
            mv.save()
            remove_on_rollback(artifacts.artifact_path(rel))  # e.g. a caller's outer transaction
            ledger_append(
                kind=GovernanceKind.MODEL_VERSION_REGISTERED,
                subject=mv.ledger_subject,
                payload={
                    "model_id": model.pk,
                    "business_unit_id": model.business_unit_id,
                    "version": version,
                    "artifact_sha256": sha256,
                    "artifact_format": artifact_format,
                    "artifact_size": len(artifact),
                    "framework": loaded.framework,
                    "framework_version": loaded.framework_version,
                    "feature_names": loaded.feature_names,
                },
                actor=actor,
            )
    except IntegrityError:
        artifacts.artifact_remove(rel)
        raise DuplicateVersion(f"Version {version!r} of model {model.name!r} is already registered.") from None
    except BaseException:
        artifacts.artifact_remove(rel)
        raise
    return mv


# --- training runs -----------------------------------------------------------------------------


@transaction.atomic(durable=True)
def training_run_register(
    *,
    business_unit,
    inputs,
    model_version: ModelVersion | None = None,
    code_version: CodeVersion | None = None,
    name: str = "",
    external_run_id: str = "",
    parameters: dict | None = None,
    metrics: dict | None = None,
    library_versions: dict | None = None,
    seeds: dict | None = None,
    started_at=None,
    ended_at=None,
    actor=None,
) -> TrainingRun:
    """Register a completed run: INPUTS is a list of (dataset version, role) pairs."""
    require(actor, "governance.add_trainingrun", business_unit)
    inputs = list(inputs)
    if not inputs:
        raise ValidationError("A training run names at least one input dataset version.")
    roles = set(TrainingRunInput.Role.values)
    for dv, role in inputs:
        if role not in roles:
            raise ValidationError(f"Unknown input role {role!r}; expected one of {', '.join(sorted(roles))}.")
        if dv.dataset.business_unit_id != business_unit.pk:
            raise ValidationError(f"Dataset version {dv.pk} belongs to another business unit.")
    if len({(dv.pk, role) for dv, role in inputs}) != len(inputs):
        raise ValidationError("An input is listed twice.")
    if code_version is not None and code_version.business_unit_id != business_unit.pk:
        raise ValidationError("The code version belongs to another business unit.")
    if model_version is not None:
        if model_version.model.business_unit_id != business_unit.pk:
            raise ValidationError("The model version belongs to another business unit.")
        if TrainingRun.objects.filter(model_version=model_version).exists():
            raise DuplicateVersion(f"Model version {model_version.pk} already has its training run.")
    if external_run_id and TrainingRun.objects.filter(
        business_unit=business_unit, external_run_id=external_run_id
    ).exists():
        raise DuplicateVersion(f"Run {external_run_id!r} is already registered.")
    for label, value in (
        ("parameters", parameters),
        ("metrics", metrics),
        ("library_versions", library_versions),
        ("seeds", seeds),
    ):
        if value is not None and not isinstance(value, dict):
            raise ValidationError(f"{label} must be an object.")
        try:
            canonical_json(value or {})
        except Exception:  # rfc8785 refuses NaN, infinities and non-JSON types
            raise ValidationError(f"{label} must be plain JSON (no NaN or infinite numbers).") from None
    if started_at and ended_at and ended_at < started_at:
        raise ValidationError("ended_at is before started_at.")
    run = TrainingRun.objects.create(
        business_unit=business_unit,
        name=name,
        external_run_id=external_run_id,
        source=TrainingRun.Source.API,
        code_version=code_version,
        model_version=model_version,
        parameters=parameters or {},
        metrics=metrics or {},
        library_versions=library_versions or {},
        seeds=seeds or {},
        started_at=started_at,
        ended_at=ended_at,
        state="COMPLETE",
        created_by=recorded_user(actor),
    )
    TrainingRunInput.objects.bulk_create(
        [TrainingRunInput(run=run, dataset_version=dv, role=role) for dv, role in inputs]
    )
    ledger_append(
        kind=GovernanceKind.TRAINING_RUN_REGISTERED,
        subject=run.ledger_subject,
        payload={
            "business_unit_id": business_unit.pk,
            "inputs": [
                {"dataset_version_id": dv.pk, "sha256": dv.sha256, "role": role}
                for dv, role in sorted(inputs, key=lambda p: (p[0].pk, p[1]))
            ],
            "code_version_id": code_version.pk if code_version else None,
            "model_version_id": model_version.pk if model_version else None,
            "artifact_sha256": model_version.artifact_sha256 if model_version else None,
            "external_run_id": external_run_id,
            "parameters": parameters or {},
            "metrics": metrics or {},
            "library_versions": library_versions or {},
            "seeds": seeds or {},
        },
        actor=actor,
    )
    return run


def storage_sweep(*, older_than: timedelta = timedelta(hours=1), dry_run: bool = False, actor=None) -> dict:
    """Remove the stored snapshot and artifact files that no record names.

    An upload writes its file before its row commits, and removes the file if the transaction
    rolls back; a process that dies in between leaves the file behind, named by nothing (a
    snapshot's data key died with the process, so its content is unreadable, but it takes room
    and should not linger). Files younger than OLDER_THAN are left alone: they may belong to an
    upload still in progress. Returns ``{"files": [relative paths], "bytes": n}``; unless
    DRY_RUN, removes them and ledgers the count and size (``registry.storage_swept``).
    """
    if older_than < timedelta(minutes=1):
        raise ValidationError("Sweep only files older than a minute: younger ones may be uploads in progress.")
    root = storage.storage_root()
    named = set(DatasetVersion.objects.exclude(stored_path="").values_list("stored_path", flat=True))
    named |= set(ModelVersion.objects.values_list("artifact_path", flat=True))
    cutoff = timezone.now().timestamp() - older_than.total_seconds()
    found, size = [], 0
    for folder in (storage.SNAPSHOT_DIR, artifacts.ARTIFACT_DIR):
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if rel in named or not path.is_file():
                continue
            stat = path.stat()
            if stat.st_mtime > cutoff:
                continue
            found.append(rel)
            size += stat.st_size
    if found and not dry_run:
        with transaction.atomic(durable=True):
            ledger_append(
                kind=GovernanceKind.STORAGE_SWEPT,
                subject="governance.storage:root",
                payload={"files": len(found), "bytes": size, "older_than_seconds": int(older_than.total_seconds())},
                actor=actor,
            )
        for rel in found:
            (root / rel).unlink(missing_ok=True)
    return {"files": found, "bytes": size}
