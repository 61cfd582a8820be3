"""Fixtures shared by every test: a signing key per session, temporary storage per test,
users with roles and business-unit access, and API clients."""

import importlib
import itertools

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

import config.celery  # noqa: F401  (the app a worker loads; tests call tasks directly, as a worker does)
from audit.keys import generate_key_file
from governance import storage
from governance.rules import roles
from governance.models import BusinessUnit
from governance.services.access import business_unit_grant, token_create

_counter = itertools.count()


@pytest.fixture(scope="session")
def signing_key_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "ledger-signing.key"
    generate_key_file(path)
    return path


@pytest.fixture(scope="session")
def storage_key_files(tmp_path_factory):
    """(master key file, subject-index key file) for the whole session."""
    folder = tmp_path_factory.mktemp("storage-keys")
    return storage.generate_key_file(folder / "master.key"), storage.generate_key_file(folder / "index.key")


@pytest.fixture(autouse=True)
def _custos_settings(settings, signing_key_dir, storage_key_files, tmp_path):
    """Give every test the session's keys and its own storage and checkpoint folders."""
    settings.CUSTOS_SIGNING_KEY_FILE = str(signing_key_dir)
    settings.CUSTOS_MASTER_KEY_FILE = str(storage_key_files[0])
    settings.CUSTOS_INDEX_KEY_FILE = str(storage_key_files[1])
    settings.MEDIA_ROOT = str(tmp_path / "storage")
    settings.CUSTOS_CHECKPOINT_DIR = str(tmp_path / "checkpoints")


@pytest.fixture
def unit(db):
    n = next(_counter)
    return BusinessUnit.objects.create(name=f"Unit {n}", slug=f"unit-{n}")


@pytest.fixture
def other_unit(db):
    n = next(_counter)
    return BusinessUnit.objects.create(name=f"Other unit {n}", slug=f"other-unit-{n}")


@pytest.fixture
def make_user(db, django_user_model):
    """Make a user with ROLE (a group name) and access to UNITS."""

    def make(role=None, units=(), *, username=None, superuser=False, password="correct-horse-battery"):
        username = username or f"{(role or 'user').lower().replace(' ', '-')}-{next(_counter)}"
        user = django_user_model.objects.create_user(
            username=username, password=password, is_staff=True, is_superuser=superuser
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        for u in units:
            business_unit_grant(unit=u, user=user)
        return user

    return make


@pytest.fixture
def pipeline_token(make_user, unit):
    """(user, plain token) of a pipeline service account with access to `unit`."""
    user = make_user(roles.PIPELINE, [unit])
    _, plain = token_create(user=user, name="test")
    return user, plain


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def token_client(pipeline_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pipeline_token[1]}")
    return client


# --- registry: the German credit data and a credit-scoring model ----------------------------


@pytest.fixture(scope="session")
def german_credit_csv(tmp_path_factory):
    """Path of the German credit CSV with its synthetic subject column `applicant_id`."""
    from governance.demo.credit import german_credit_frame

    path = tmp_path_factory.mktemp("data") / "german_credit.csv"
    german_credit_frame().to_csv(path, index=False)
    return path


@pytest.fixture
def make_german_credit_version(db, german_credit_csv):
    """Register the German credit data as a stored DatasetVersion: make(unit, version=…, actor=…)."""
    from governance.demo import credit
    from governance.models import Dataset
    from governance.services.registry import dataset_create, dataset_version_upload

    def make(unit, *, version="v1", actor=None, name="german-credit", path=None):
        dataset = Dataset.objects.filter(business_unit=unit, name=name).first()
        dataset = dataset or dataset_create(business_unit=unit, name=name, actor=actor)
        return dataset_version_upload(
            dataset=dataset,
            version=version,
            file=path or german_credit_csv,
            file_format="csv",
            subject_column=credit.SUBJECT_COLUMN,
            personal_columns=credit.PERSONAL_COLUMNS,
            sensitive_columns=credit.SENSITIVE_COLUMNS,
            actor=actor,
        )

    return make


@pytest.fixture
def german_credit_version(make_german_credit_version, unit):
    """The German credit data registered in `unit`."""
    return make_german_credit_version(unit)


@pytest.fixture(scope="session")
def credit_model_artifact():
    """(skops bytes, parameters, metrics) of the credit pipeline trained on the German credit data."""
    import skops.io as sio

    from governance.demo.credit import german_credit_frame, train_credit_model

    pipeline, params, metrics = train_credit_model(german_credit_frame(), seed=0)
    return sio.dumps(pipeline), params, metrics


@pytest.fixture
def make_credit_model_version(db, credit_model_artifact, make_german_credit_version):
    """Register the credit model as a ModelVersion with its TrainingRun on the German credit data.

    make(unit, *, version="1.0", dataset_version=None, actor=None) -> ModelVersion
    """
    from governance.demo.credit import library_versions
    from governance.models import MLModel
    from governance.services.registry import (
        code_version_register,
        model_create,
        model_version_register,
        training_run_register,
    )

    def make(unit, *, version="1.0", dataset_version=None, actor=None, name="credit-scoring"):
        data, params, metrics = credit_model_artifact
        dataset_version = dataset_version or make_german_credit_version(unit, version=f"for-{name}-{version}")
        model = MLModel.objects.filter(business_unit=unit, name=name).first() or model_create(
            business_unit=unit,
            name=name,
            intended_purpose="Score consumer credit applications.",
            risk_tier="high",
            annex_iii_category="creditworthiness",
            actor=actor,
        )
        code, _ = code_version_register(
            business_unit=unit, repository_url="https://git.example.com/credit/scoring", commit_sha="a" * 40, actor=actor
        )
        mv = model_version_register(model=model, version=version, artifact=data, artifact_format="skops", actor=actor)
        training_run_register(
            business_unit=unit,
            inputs=[(dataset_version, "train")],
            model_version=mv,
            code_version=code,
            name="train-credit-scoring",
            parameters=params,
            metrics=metrics,
            library_versions=library_versions(),
            seeds={"random_state": 0},
            actor=actor,
        )
        return mv

    return make


@pytest.fixture
def credit_model_version(make_credit_model_version, unit):
    """The credit-scoring model (high risk, creditworthiness) registered in `unit`, with its run."""
    return make_credit_model_version(unit)


# --- Transactional tests must restore what data migrations made ------------------------------
# A transactional test ends with a flush; without a serialized rollback the flush re-creates the
# role groups through post_migrate. On PostgreSQL the sequences are not reset, so the groups come
# back under new ids, and the next serialized-rollback test fails restoring "Data Scientist" under
# id 1 (SQLite reuses ids and hides it). Refuse such a test at collection, on every database.
def pytest_collection_modifyitems(config, items):
    offenders = []
    for item in items:
        marker = item.get_closest_marker("django_db")
        transactional = "transactional_db" in getattr(item, "fixturenames", ()) or (
            marker is not None and marker.kwargs.get("transaction")
        )
        serialized = "django_db_serialized_rollback" in getattr(item, "fixturenames", ()) or (
            marker is not None and marker.kwargs.get("serialized_rollback")
        )
        if transactional and not serialized:
            offenders.append(item.nodeid)
    if offenders:
        raise pytest.UsageError(
            "transactional tests need serialized_rollback=True (see tests/conftest.py): " + ", ".join(offenders)
        )


# --- Transactional tests and the ledger's append-only triggers --------------------------------
# A transactional test (live_server, transaction=True) ends with Django's flush, which deletes
# (SQLite) or truncates (PostgreSQL) every table, and the ledger's triggers refuse exactly that.
# The harness acts as the database owner: `flush` lifts the triggers and puts them back at once,
# so every test runs against a database that refuses changes to the ledger.
_triggers = importlib.import_module("audit.migrations.0004_append_only_triggers")


@pytest.fixture(scope="session", autouse=True)
def _flush_lifts_ledger_triggers():
    from django.core.management.commands import flush
    from django.db import connections

    original = flush.Command.handle

    def handle(self, **options):
        connection = connections[options.get("database", "default")]

        def run(statements):
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)

        run(_triggers.drop_sql(connection.vendor))
        try:
            return original(self, **options)
        finally:
            run(_triggers.trigger_sql(connection.vendor))

    flush.Command.handle = handle
    yield
    flush.Command.handle = original


# --- release gates: a published credit policy and two credit models that pass and fail it ---


@pytest.fixture
def gate_policy(db):
    """The retail-credit gate policy (version 1), published by the system."""
    from governance.demo.credit import credit_policy_document
    from governance.services.gates import gate_policy_publish

    return gate_policy_publish(name="retail-credit", document=credit_policy_document(explained_rows=100))


@pytest.fixture(scope="session")
def gate_model_artifacts():
    """skops bytes of {"fair": model without sex, "skewed": model with sex skewed against women}."""
    import skops.io as sio

    from governance.demo.credit import german_credit_frame
    from governance.demo.credit import train_fair_model, train_skewed_model

    df = german_credit_frame()
    return {"fair": sio.dumps(train_fair_model(df)), "skewed": sio.dumps(train_skewed_model(df))}


@pytest.fixture
def make_gate_model_version(db, gate_model_artifacts):
    """make(unit, kind="fair"|"skewed", *, version=None, name="credit-gates") -> ModelVersion
    of a high-risk credit model."""
    from governance.models import MLModel
    from governance.services.registry import model_create, model_version_register

    def make(unit, kind="fair", *, version=None, name="credit-gates", actor=None):
        model = MLModel.objects.filter(business_unit=unit, name=name).first() or model_create(
            business_unit=unit, name=name, intended_purpose="Score consumer credit applications.",
            risk_tier="high", annex_iii_category="creditworthiness", actor=actor,
        )
        version = version or f"{kind}-{model.versions.count() + 1}"
        return model_version_register(
            model=model, version=version, artifact=gate_model_artifacts[kind], artifact_format="skops", actor=actor
        )

    return make

