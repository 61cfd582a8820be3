import hashlib
import io
import logging
import re
import time

import pytest
from rest_framework.test import APIClient

from audit.models import LedgerEntry
from governance import storage
from governance.demo import credit
from governance.rules import roles
from governance.models import DatasetVersion, ModelVersion, SubjectIndexEntry, TrainingRun


def _files():
    root = storage.storage_root()
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _counts():
    return DatasetVersion.objects.count(), ModelVersion.objects.count(), LedgerEntry.objects.count(), len(_files())


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


def _client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def dataset_id(token_client, unit):
    response = token_client.post("/api/v1/datasets", {"business_unit": unit.slug, "name": "german-credit"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _upload(client, dataset_id, content, name="data.csv", **fields):
    data = {"version": "v1", "subject_column": "applicant_id", **fields, "file": io.BytesIO(content)}
    data["file"].name = name
    return client.post(f"/api/v1/datasets/{dataset_id}/versions", data, format="multipart")


def test_pipeline_registers_data_model_and_run_end_to_end(token_client, unit, dataset_id, german_credit_csv, credit_model_artifact):
    content = german_credit_csv.read_bytes()
    response = _upload(
        token_client, dataset_id, content, personal_columns="applicant_id,sex,age", sensitive_columns=["sex", "age"]
    )
    assert response.status_code == 201, response.content
    dv = response.json()
    assert dv["sha256"] == hashlib.sha256(content).hexdigest() and dv["row_count"] == 1000
    assert dv["sensitive_columns"] == ["sex", "age"] and dv["storage"] == "stored"

    response = token_client.post(
        "/api/v1/models",
        {"business_unit": unit.slug, "name": "credit", "intended_purpose": "Score applications.",
         "risk_tier": "high", "annex_iii_category": "creditworthiness"},
        format="json",
    )
    assert response.status_code == 201, response.content
    model_id = response.json()["id"]
    artifact = io.BytesIO(credit_model_artifact[0])
    artifact.name = "model.skops"
    response = token_client.post(
        f"/api/v1/models/{model_id}/versions", {"artifact": artifact, "version": "1.0", "format": "skops"}, format="multipart"
    )
    assert response.status_code == 201, response.content
    mv = response.json()
    assert mv["artifact_sha256"] == hashlib.sha256(credit_model_artifact[0]).hexdigest()
    assert "age" in mv["feature_names"]

    response = token_client.post(
        "/api/v1/code-versions",
        {"business_unit": unit.slug, "repository_url": "https://git.example.com/credit", "commit_sha": "b" * 40},
        format="json",
    )
    assert response.status_code == 201
    code_id = response.json()["id"]
    response = token_client.post(
        "/api/v1/training-runs",
        {"business_unit": unit.slug, "inputs": [{"dataset_version": dv["id"], "role": "train"}],
         "model_version": mv["id"], "code_version": code_id, "seeds": {"random_state": 0},
         "library_versions": credit.library_versions(), "metrics": {"auc": 0.81}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["inputs"][0]["sha256"] == dv["sha256"]

    graph = token_client.get(f"/api/v1/model-versions/{mv['id']}/lineage").json()
    ids = {n["id"] for n in graph["nodes"]}
    assert {f"modelversion:{mv['id']}", f"datasetversion:{dv['id']}", f"codeversion:{code_id}"} <= ids
    assert {"source": f"datasetversion:{dv['id']}", "target": f"trainingrun:{response.json()['id']}", "label": "train"} in graph["edges"]
    down = token_client.get(f"/api/v1/dataset-versions/{dv['id']}/lineage").json()
    assert f"modelversion:{mv['id']}" in {n["id"] for n in down["nodes"]}
    assert token_client.get(f"/api/v1/model-versions?artifact_sha256={mv['artifact_sha256']}").json()["count"] == 1


BAD_UPLOADS = {
    "truncated csv": (b"applicant_id,sex,age\na-1,male,30\na-2,fem", "data.csv", {}),
    "malformed parquet": (b"PAR1 this is not parquet", "data.parquet", {}),
    "missing declared column": (b"applicant_id,sex\na-1,male\n", "data.csv", {"sensitive_columns": "age"}),
    "missing subject column": (b"id,sex\na-1,male\n", "data.csv", {}),
    # Two columns of one name: the subject index must not quietly read the other one.
    "repeated column name": (b"applicant_id,applicant_id,sex\na-1,99,male\n", "data.csv", {}),
    "NUL in a column name": (b"applicant_id,se\x00x\na-1,male\n", "data.csv", {}),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_uploads_are_400_problems_and_store_nothing(token_client, dataset_id, case):
    content, name, fields = BAD_UPLOADS[case]
    before = _counts()
    body = _problem(_upload(token_client, dataset_id, content, name=name, **fields), 400)
    assert body["errors"]["file"]
    assert _counts() == before


def test_an_overlong_subject_column_is_400_not_a_database_error(token_client, dataset_id):
    """SQLite stores any length; PostgreSQL refuses a value past the column's 200 characters."""
    column = "c" * 201
    before = _counts()
    body = _problem(_upload(token_client, dataset_id, f"{column},x\na-1,1\n".encode(), subject_column=column), 400)
    assert "200" in str(body["errors"])
    assert _counts() == before


def test_a_malformed_row_is_refused_without_echoing_its_personal_data(token_client, dataset_id):
    content = b"applicant_id,age,sex\napplicant-0001,35,female\napplicant-0002,41,male,Jane Roe 1983-02-01\n"
    body = _problem(_upload(token_client, dataset_id, content), 400)
    message = str(body["errors"])
    assert "Expected 3 columns, got 4" in message
    assert "Jane Roe" not in message and "applicant-0002" not in message


def test_duplicate_version_is_409_and_oversized_is_413(token_client, dataset_id, german_credit_csv, settings):
    content = german_credit_csv.read_bytes()
    assert _upload(token_client, dataset_id, content).status_code == 201
    before = _counts()
    _problem(_upload(token_client, dataset_id, content), 409)
    settings.CUSTOS_MAX_UPLOAD_BYTES = 1000
    _problem(_upload(token_client, dataset_id, content, version="v2"), 413)
    # Under the envelope slack the Content-Length check lets it through; the stream count stops it.
    settings.CUSTOS_MAX_UPLOAD_BYTES = len(content) - 10
    _problem(_upload(token_client, dataset_id, content, version="v3"), 413)
    assert _counts() == before


def test_artifacts_have_their_own_smaller_limit(token_client, unit, settings, credit_model_artifact):
    """An artifact is read whole into memory to be loaded and checked, so it is held to
    CUSTOS_MAX_ARTIFACT_BYTES, not to the 2 GiB limit of streamed snapshots."""
    model = token_client.post(
        "/api/v1/models",
        {"business_unit": unit.slug, "name": "m", "intended_purpose": "p", "risk_tier": "minimal"},
        format="json",
    ).json()
    data = credit_model_artifact[0]
    settings.CUSTOS_MAX_UPLOAD_BYTES = 10 * len(data)
    settings.CUSTOS_MAX_ARTIFACT_BYTES = len(data) - 10
    before = _counts()
    artifact = io.BytesIO(data)
    artifact.name = "model.skops"
    response = token_client.post(
        f"/api/v1/models/{model['id']}/versions", {"version": "1", "format": "skops", "artifact": artifact}, format="multipart"
    )
    _problem(response, 413)
    assert _counts() == before


def test_artifact_that_does_not_load_is_400_and_stores_nothing(token_client, unit):
    model_id = token_client.post(
        "/api/v1/models", {"business_unit": unit.slug, "name": "m", "intended_purpose": "p", "risk_tier": "minimal"},
        format="json",
    ).json()["id"]
    before = _counts()
    for content, fmt in ((b"not a model", "skops"), (b"\x80\x04K\x01.", "pickle"), (b"{", "xgboost-json")):
        artifact = io.BytesIO(content)
        artifact.name = "m.bin"
        body = _problem(
            token_client.post(f"/api/v1/models/{model_id}/versions", {"artifact": artifact, "version": "1", "format": fmt}, format="multipart"),
            400,
        )
        assert body["errors"]["artifact"]
    assert _counts() == before


def test_reference_and_bad_json_inputs(token_client, dataset_id, unit):
    response = token_client.post(
        f"/api/v1/datasets/{dataset_id}/references",
        {"version": "ext-1", "uri": "s3://bucket/credit.csv", "sha256": "c" * 64},
        format="json",
    )
    assert response.status_code == 201 and response.json()["storage"] == "external"
    _problem(token_client.post(f"/api/v1/datasets/{dataset_id}/references", {"version": "x", "uri": "s3://b/k", "sha256": "z" * 64}, format="json"), 400)
    _problem(token_client.post("/api/v1/models", {"business_unit": unit.slug, "name": "m", "intended_purpose": "p", "risk_tier": "high"}, format="json"), 400)
    _problem(token_client.post("/api/v1/training-runs", {"business_unit": unit.slug, "inputs": []}, format="json"), 400)


# --- permissions ----------------------------------------------------------------------------


def test_another_units_objects_are_invisible_and_unwritable(unit, other_unit, make_user, make_credit_model_version):
    mv = make_credit_model_version(other_unit)
    dv = TrainingRun.objects.get(model_version=mv).inputs.get().dataset_version
    for role in (roles.DATA_SCIENTIST, roles.PIPELINE, roles.COMPLIANCE_OFFICER, roles.MODEL_RISK_VALIDATOR):
        client = _client_for(make_user(role, [unit]))
        for url in ("/api/v1/datasets", "/api/v1/dataset-versions", "/api/v1/models", "/api/v1/model-versions", "/api/v1/training-runs", "/api/v1/code-versions"):
            assert client.get(url).json()["count"] == 0, (role, url)
        for url in (f"/api/v1/dataset-versions/{dv.pk}", f"/api/v1/model-versions/{mv.pk}", f"/api/v1/models/{mv.model_id}",
                    f"/api/v1/model-versions/{mv.pk}/lineage", f"/api/v1/dataset-versions/{dv.pk}/lineage",
                    f"/api/v1/training-runs/{mv.training_run.pk}"):
            _problem(client.get(url), 404)
        _problem(_upload(client, dv.dataset_id, b"applicant_id\na\n", version="x"), 404)
        body = _problem(client.post("/api/v1/datasets", {"business_unit": other_unit.slug, "name": "x"}, format="json"), 400)
        assert "business_unit" in body["errors"]


def test_auditor_reads_every_unit_but_registers_nothing(unit, other_unit, make_user, make_credit_model_version):
    make_credit_model_version(other_unit)
    client = _client_for(make_user(roles.AUDITOR))
    assert client.get("/api/v1/model-versions").json()["count"] == 1
    _problem(client.post("/api/v1/datasets", {"business_unit": other_unit.slug, "name": "x"}, format="json"), 400)


def test_officer_reads_own_unit_but_cannot_register_there(unit, make_user, make_credit_model_version):
    mv = make_credit_model_version(unit)
    client = _client_for(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    assert client.get(f"/api/v1/model-versions/{mv.pk}").status_code == 200
    _problem(client.post("/api/v1/datasets", {"business_unit": unit.slug, "name": "x"}, format="json"), 403)
    _problem(_upload(client, mv.training_run.inputs.get().dataset_version.dataset_id, b"applicant_id\na\n", version="x"), 403)


def test_unauthenticated_is_401(api_client):
    _problem(api_client.get("/api/v1/datasets"), 401)


# --- subjects --------------------------------------------------------------------------------


def test_subject_lookup_finds_versions_runs_and_models(unit, other_unit, make_user, make_credit_model_version, make_german_credit_version):
    mv = make_credit_model_version(unit)
    unused = make_german_credit_version(unit, version="unused")
    make_credit_model_version(other_unit)
    officer = _client_for(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    body = officer.post("/api/v1/subjects/lookup", {"subject_id": "Applicant-0007 "}, format="json").json()
    assert {d["id"] for d in body["dataset_versions"]} == {mv.training_run.inputs.get().dataset_version_id, unused.pk}
    assert all(d["rows"] == 1 for d in body["dataset_versions"])
    assert body["training_runs"] == [mv.training_run.pk]
    assert [m["id"] for m in body["model_versions"]] == [mv.pk]
    nobody = officer.post("/api/v1/subjects/lookup", {"subject_id": "applicant-9999"}, format="json").json()
    assert nobody["dataset_versions"] == [] and nobody["model_versions"] == []
    scientist = _client_for(make_user(roles.DATA_SCIENTIST, [unit]))
    _problem(scientist.post("/api/v1/subjects/lookup", {"subject_id": "applicant-0007"}, format="json"), 403)


def test_subject_index_lookup_does_not_open_snapshots(unit, make_german_credit_version, make_user, monkeypatch):
    from governance.selectors.registry import subject_holdings

    dv = make_german_credit_version(unit)
    from governance.selectors import snapshots

    # Every read of a stored snapshot's content decrypts through this one function.
    monkeypatch.setattr(snapshots, "decrypt_chunks", lambda *a, **k: pytest.fail("a snapshot was opened"))
    found = subject_holdings(subject_id="applicant-0500", user=make_user(roles.AUDITOR))
    assert found["dataset_versions"] == [(dv, 1)]
    assert SubjectIndexEntry.objects.count() == 1000


def test_upload_handler_stops_a_stream_without_content_length(tmp_path):
    """A chunked request has no Content-Length: the handler stops it as it passes the limit."""
    import os

    from config.errors import TooLarge as PayloadTooLarge
    from governance.api.registry import LimitedUploadHandler

    handler = LimitedUploadHandler(None, limit=10)
    handler.new_file("file", "data.csv", "text/csv", None)
    handler.receive_data_chunk(b"12345", 0)
    path = handler.file.temporary_file_path()
    assert os.path.exists(path)
    with pytest.raises(PayloadTooLarge):
        handler.receive_data_chunk(b"678901", 5)
    assert not os.path.exists(path)


def test_parquet_upload_infers_the_format_from_the_name(token_client, dataset_id, tmp_path):
    path = tmp_path / "g.parquet"
    credit.german_credit_frame().to_parquet(path)
    response = _upload(token_client, dataset_id, path.read_bytes(), name="snapshot.parquet")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["file_format"] == "parquet" and body["row_count"] == 1000
    assert SubjectIndexEntry.objects.filter(dataset_version_id=body["id"]).count() == 1000


def _session_client(user):
    """A person's browser: logged in by session, with the CSRF check enforced (the test client
    skips it otherwise, and with it Django's own parsing of the body)."""
    client = APIClient(enforce_csrf_checks=True)
    client.get("/admin/login/")  # the login page sets the csrftoken cookie
    assert client.login(username=user.username, password="correct-horse-battery")
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    return client


def test_a_session_upload_with_csrf_enforced_is_stored_and_obeys_the_limit(unit, make_user, german_credit_csv,
                                                                            settings):
    scientist = make_user(roles.DATA_SCIENTIST, [unit])
    client = _session_client(scientist)
    created = client.post("/api/v1/datasets", {"business_unit": unit.slug, "name": "german-credit"}, format="json")
    assert created.status_code == 201, created.content
    dataset_id = created.json()["id"]
    content = german_credit_csv.read_bytes()
    without_token = APIClient(enforce_csrf_checks=True)
    without_token.login(username=scientist.username, password="correct-horse-battery")
    _problem(_upload(without_token, dataset_id, content), 403)  # the CSRF check holds
    response = _upload(client, dataset_id, content)  # was a 500: an in-memory file, no temporary path
    assert response.status_code == 201, response.content
    assert response.json()["row_count"] == 1000
    settings.CUSTOS_MAX_UPLOAD_BYTES = 1024  # the limit now applies to sessions too
    before = _counts()
    _problem(_upload(client, dataset_id, content, version="v2"), 413)
    assert _counts() == before


def test_a_snapshot_of_30000_columns_is_a_quick_400(token_client, dataset_id):
    """A 260 KB CSV of 30,000 columns outlasted a worker's 30 s timeout (a quadratic check of
    repeated names, and pyarrow's reader takes minutes on such a header); now it is refused at once."""
    from governance.rules.limits import SNAPSHOT_MAX_COLUMNS

    names = ["applicant_id"] + [f"c{i}" for i in range(29_999)]
    content = (",".join(names) + "\n" + ",".join(["applicant-0001"] + ["1"] * 29_999) + "\n").encode()
    before = _counts()
    started = time.perf_counter()
    body = _problem(_upload(token_client, dataset_id, content), 400)
    assert time.perf_counter() - started < 5
    assert f"at most {SNAPSHOT_MAX_COLUMNS:,}" in body["errors"]["file"][0]
    assert _counts() == before
    # Just under the limit is accepted, repeated names are still found (and named, bounded).
    names = ["applicant_id"] + [f"c{i % 1500}" for i in range(SNAPSHOT_MAX_COLUMNS - 1)]
    content = (",".join(names) + "\n" + ",".join(["applicant-0001"] + ["1"] * (len(names) - 1)) + "\n").encode()
    message = _problem(_upload(token_client, dataset_id, content), 400)["errors"]["file"][0]
    assert message.startswith("Column names must be unique; repeated: c0, c1,") and "and 489 more" in message
    assert len(message) < 300


def test_no_refused_upload_quotes_the_data(token_client, dataset_id, unit, german_credit_csv, caplog):
    """Every way an upload of the German credit data can be refused, scanned for its subject ids
    and cell values: the response and the log (issue 13, item 4)."""
    caplog.set_level(logging.DEBUG)
    good = german_credit_csv.read_bytes()
    lines = good.splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    cases = {
        "truncated": (good[: len(good) // 2 + 7], "data.csv", {}),
        "a row with an extra field": (header + rows[0] + rows[1].rstrip(b"\n") + b",Jane Roe\n" + b"".join(rows[2:]),
                                      "data.csv", {}),
        "a quote never closed": (header + rows[0] + b'"' + b"".join(rows[1:]), "data.csv", {}),
        "missing subject column": (good, "data.csv", {"subject_column": "id"}),
        "missing declared column": (good, "data.csv", {"personal_columns": "name"}),
        "repeated column": (header.replace(b"risk", b"applicant_id", 1) + b"".join(rows), "data.csv", {}),
        "csv said to be parquet": (good, "data.parquet", {}),
        "too many columns": (b",".join([b"applicant_id"] + [b"c%d" % i for i in range(3000)]) + b"\n"
                             + b",".join([b"applicant-0042"] + [b"7"] * 3000) + b"\n", "data.csv", {}),
    }
    for i, (case, (content, name, fields)) in enumerate(cases.items()):
        response = _upload(token_client, dataset_id, content, name=name, version=f"v{i}", **fields)
        assert response.status_code == 400, (case, response.content)
        text = response.content.decode()
        assert not re.findall(r"applicant-\d{4}", text) and "Jane Roe" not in text, (case, text)
    artifact = io.BytesIO(b"applicant-0001,male,67\n")
    artifact.name = "model.skops"
    model = token_client.post("/api/v1/models", {"business_unit": unit.slug, "name": "m", "risk_tier": "minimal",
                                                 "intended_purpose": "Testing refusals."}, format="json").json()
    response = token_client.post(f"/api/v1/models/{model['id']}/versions",
                                 {"artifact": artifact, "version": "1", "format": "skops"}, format="multipart")
    assert response.status_code == 400 and "applicant-0001" not in response.content.decode()
    assert not re.findall(r"applicant-\d{4}|Jane Roe", caplog.text), caplog.text[:2000]
