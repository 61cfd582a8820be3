"""OpenLineage ingestion: the real openlineage-python client (HTTP transport, Bearer token)
against the live test server, and malformed events answered with 400 naming the problem."""

import uuid
from datetime import UTC, datetime

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from audit.models import LedgerEntry
from governance.models import DatasetVersion, OpenLineageEvent, TrainingRun
from governance.rules.openlineage import OpenLineageInvalid, parse_event

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"

# The live server runs in a thread with its own connections: the test database must be
# committed (transactional) and restored afterwards with the migrations' rows (roles, ledger head).
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _client(live_server, token):
    config = HttpConfig(url=live_server.url, auth=ApiKeyTokenProvider({"api_key": token}), retry={"total": 0})
    return OpenLineageClient(transport=HttpTransport(config))


def _now():
    return datetime.now(UTC).isoformat()


def _datasets():
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name="applicant_id", type="string"),
            schema_dataset.SchemaDatasetFacetFields(name="risk", type="int"),
        ]
    )
    train = InputDataset(
        namespace="s3://credit-lake",
        name="applications/2024-06",
        facets={"schema": schema, "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="v7")},
    )
    scores = OutputDataset(namespace="s3://credit-lake", name="scores/2024-06")
    return train, scores


def test_run_events_from_the_python_client_map_to_a_run_and_are_idempotent(live_server, pipeline_token, unit):
    client = _client(live_server, pipeline_token[1])
    job = Job(namespace=unit.slug, name="train_credit_model")
    run = Run(runId=str(uuid.uuid4()))
    train, scores = _datasets()
    start = RunEvent(eventType=RunState.START, eventTime=_now(), run=run, job=job, producer=PRODUCER, inputs=[train])
    complete = RunEvent(
        eventType=RunState.COMPLETE, eventTime=_now(), run=run, job=job, producer=PRODUCER, inputs=[train], outputs=[scores]
    )
    client.emit(start)
    client.emit(complete)
    client.emit(complete)  # a re-send changes nothing

    training_run = TrainingRun.objects.get(external_run_id=run.runId)
    assert training_run.business_unit == unit and training_run.state == "COMPLETE" and training_run.source == "openlineage"
    assert training_run.name == f"{unit.slug}.train_credit_model"
    assert training_run.started_at and training_run.ended_at
    (link,) = training_run.inputs.all()
    assert link.dataset_version.dataset.name == "s3://credit-lake/applications/2024-06"
    assert link.dataset_version.version == "v7"
    assert link.dataset_version.schema == [{"name": "applicant_id", "type": "string"}, {"name": "risk", "type": "int"}]
    assert training_run.outputs.get().dataset_version.dataset.name == "s3://credit-lake/scores/2024-06"
    assert OpenLineageEvent.objects.filter(training_run=training_run).count() == 2
    entries = LedgerEntry.objects.filter(kind="registry.openlineage_event_received")
    assert entries.count() == 2
    assert {e.payload["event_type"] for e in entries} == {"START", "COMPLETE"}
    assert all(e.payload["run_id"] == run.runId for e in entries)


def test_dataset_and_job_events(live_server, pipeline_token, unit):
    client = _client(live_server, pipeline_token[1])
    train, scores = _datasets()
    client.emit(
        DatasetEvent(eventTime=_now(), producer=PRODUCER, dataset=StaticDataset(namespace=unit.slug, name="features"))
    )
    client.emit(JobEvent(eventTime=_now(), producer=PRODUCER, job=Job(namespace=unit.slug, name="nightly"), inputs=[train], outputs=[scores]))
    assert set(OpenLineageEvent.objects.values_list("event_kind", flat=True)) == {"dataset", "job"}
    assert DatasetVersion.objects.filter(dataset__name=f"{unit.slug}/features", storage="openlineage").exists()
    assert DatasetVersion.objects.filter(dataset__name="s3://credit-lake/applications/2024-06", version="v7").exists()
    assert not TrainingRun.objects.exists()


def test_openlineage_run_joins_an_uploaded_snapshot(live_server, pipeline_token, unit, make_german_credit_version):
    """A pipeline uploads its snapshot as `<namespace>/<name>` version v1, then reports the run."""
    from governance.models import Dataset

    dv = make_german_credit_version(unit, name="s3://lake/german-credit", version="v1")
    assert Dataset.objects.get(pk=dv.dataset_id).name == "s3://lake/german-credit"
    client = _client(live_server, pipeline_token[1])
    data = InputDataset(
        namespace="s3://lake", name="german-credit",
        facets={"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="v1")},
    )
    run = Run(runId=str(uuid.uuid4()))
    client.emit(RunEvent(eventType=RunState.COMPLETE, eventTime=_now(), run=run, job=Job(namespace=unit.slug, name="t"), producer=PRODUCER, inputs=[data]))
    assert TrainingRun.objects.get(external_run_id=run.runId).inputs.get().dataset_version == dv


def _event(**overrides):
    body = {
        "eventType": "START",
        "eventTime": "2026-06-01T10:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "ns", "name": "job"},
        "inputs": [],
        "outputs": [],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    "overrides,path",
    [
        ({"eventTime": None}, "eventTime"),
        ({"eventTime": "yesterday"}, "eventTime"),
        ({"producer": None}, "producer"),
        ({"run": {"runId": "not-a-uuid"}}, "run.runId"),
        ({"eventType": "DONE"}, "eventType"),
        ({"job": {"namespace": "ns"}}, "job.name"),
        ({"inputs": [{"namespace": "ns"}]}, "inputs[0].name"),
        ({"inputs": "x"}, "inputs"),
        # Versions are never cut short (two long versions would become one) nor stringified.
        ({"inputs": [{"namespace": "ns", "name": "d", "facets": {"version": {"datasetVersion": "v" * 101}}}]},
         "inputs[0].facets.version.datasetVersion"),
        ({"inputs": [{"namespace": "ns", "name": "d", "facets": {"version": {"datasetVersion": ["v1"]}}}]},
         "inputs[0].facets.version.datasetVersion"),
    ],
)
def test_parse_event_names_the_faulty_field(overrides, path):
    with pytest.raises(OpenLineageInvalid) as info:
        parse_event(_event(**overrides))
    assert info.value.path == path


def test_malformed_event_is_a_400_naming_the_field(token_client, unit):
    before = LedgerEntry.objects.count()
    response = token_client.post("/api/v1/lineage", _event(run={"runId": "nope"}, job={"namespace": unit.slug, "name": "j"}), format="json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert "run.runId" in response.json()["errors"]
    assert token_client.post("/api/v1/lineage", [1, 2], format="json").status_code == 400
    assert LedgerEntry.objects.count() == before and not OpenLineageEvent.objects.exists()


def test_same_run_and_type_with_another_body_is_409(token_client, unit):
    event = _event(job={"namespace": unit.slug, "name": "j"})
    assert token_client.post("/api/v1/lineage", event, format="json").status_code == 201
    assert token_client.post("/api/v1/lineage", event, format="json").status_code == 200
    changed = {**event, "eventTime": "2026-06-01T11:00:00Z"}
    assert token_client.post("/api/v1/lineage", changed, format="json").status_code == 409
    running = {**event, "eventType": "RUNNING"}
    assert token_client.post("/api/v1/lineage", running, format="json").status_code == 201
    assert token_client.post("/api/v1/lineage", {**running, "eventTime": "2026-06-01T12:00:00Z"}, format="json").status_code == 201


def test_events_cannot_target_another_unit(token_client, other_unit, make_user, unit):
    event = _event(job={"namespace": other_unit.slug, "name": "j"})
    # The pipeline has one unit: an unknown namespace falls back to it, never to other_unit.
    assert token_client.post("/api/v1/lineage", event, format="json").status_code == 201
    assert OpenLineageEvent.objects.get().business_unit == unit
    from rest_framework.test import APIClient

    from governance.rules import roles

    two_units = APIClient()
    two_units.force_authenticate(make_user(roles.PIPELINE, [unit, other_unit]))
    response = two_units.post("/api/v1/lineage", _event(job={"namespace": "elsewhere", "name": "j"}), format="json")
    assert response.status_code == 400 and "job.namespace" in response.json()["errors"]
    officer = APIClient()
    officer.force_authenticate(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    assert officer.post("/api/v1/lineage", _event(job={"namespace": unit.slug, "name": "j"}), format="json").status_code == 403
