"""Monitoring API: batches by pipeline token (unit-scoped, size-limited, idempotent), labels,
pre-aggregated windows, plans and windows; and the release-status API's monitoring health."""

import io
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from governance.monitoring.aggregates import ReferenceProfile, WindowAggregate, parse_rows
from governance.monitoring.models import IngestedBatch, MonitoringWindow
from governance.monitoring.services import windows_close
from governance.services.access import token_create

from .conftest import PLAN_ORIGIN, scored_rows

WEEK = timedelta(days=7)


@pytest.fixture
def client_of(monitoring_people):
    def make(user):
        _, plain = token_create(user=user, name=f"t-{user.pk}")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
        return client

    return make


def post_batch(client, plan, frame, name="batch.csv"):
    data = io.BytesIO(frame.to_csv(index=False).encode())
    data.name = name
    return client.post(f"/api/v1/monitoring/plans/{plan.pk}/batches", {"file": data}, format="multipart")


@pytest.fixture
def recent_plan(production_plan, monitoring_people):
    """The plan with its windows starting three weeks before now (the API ingests against now)."""
    from django.utils import timezone

    from governance.monitoring.services import plan_version_publish

    origin = (timezone.now() - 3 * WEEK).replace(hour=0, minute=0, second=0, microsecond=0)
    plan_version_publish(plan=production_plan, changes={"origin": origin.isoformat()}, actor=monitoring_people["admin"])
    production_plan.test_origin = origin
    return production_plan


def test_a_pipeline_sends_a_batch_once(recent_plan, monitoring_people, client_of):
    client = client_of(monitoring_people["pipeline"])
    rows, _ = scored_rows(recent_plan.model_version, 300, start=recent_plan.test_origin)
    response = post_batch(client, recent_plan, rows)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["rows_accepted"] == 300 and body["duplicate"] is False
    again = post_batch(client, recent_plan, rows)
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["id"] == body["id"]
    assert IngestedBatch.objects.count() == 1
    assert MonitoringWindow.objects.get(plan=recent_plan).rows == 300


def test_bad_batches_are_4xx(recent_plan, monitoring_people, client_of, settings, make_user, other_unit):
    from governance.rules import roles

    client = client_of(monitoring_people["pipeline"])
    rows, _ = scored_rows(recent_plan.model_version, 30, start=recent_plan.test_origin)
    missing = post_batch(client, recent_plan, rows.drop(columns=["age"]))
    assert missing.status_code == 400 and "age" in missing.json()["detail"] + str(missing.json().get("errors"))
    broken = io.BytesIO(b"\x00\x01PAR1 not parquet")
    broken.name = "b.parquet"
    assert client.post(f"/api/v1/monitoring/plans/{recent_plan.pk}/batches", {"file": broken},
                       format="multipart").status_code == 400
    settings.CUSTOS_MONITORING_MAX_BATCH_BYTES = 1000
    assert post_batch(client, recent_plan, rows).status_code == 413
    outsider = client_of(make_user(roles.PIPELINE, [other_unit]))
    assert post_batch(outsider, recent_plan, rows).status_code == 404
    person = APIClient()
    person.force_authenticate(monitoring_people["requester"])  # a Data Scientist reads, never sends
    assert person.post(f"/api/v1/monitoring/plans/{recent_plan.pk}/labels",
                       {"labels": [{"prediction_id": "x", "label": 1}]}, format="json").status_code == 403
    assert not IngestedBatch.objects.exists()


def test_labels_and_aggregates_and_windows(recent_plan, monitoring_people, client_of):
    client = client_of(monitoring_people["pipeline"])
    rows, truth = scored_rows(recent_plan.model_version, 250, start=recent_plan.test_origin)
    assert post_batch(client, recent_plan, rows).status_code == 201
    labels = [{"prediction_id": k, "label": v} for k, v in list(truth.items())[:100]]
    response = client.post(f"/api/v1/monitoring/plans/{recent_plan.pk}/labels",
                           {"labels": labels + [{"prediction_id": "unknown-id", "label": 0}]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["applied"] == 100 and response.json()["unmatched"] == 1
    bad = client.post(f"/api/v1/monitoring/plans/{recent_plan.pk}/labels",
                      {"labels": [{"prediction_id": "p-0-000001", "label": "perhaps"}]}, format="json")
    assert bad.status_code == 400
    # A window aggregated at the edge merges into the same window as rows would.
    reference = ReferenceProfile.from_json(recent_plan.reference)
    import pyarrow as pa

    more, _ = scored_rows(recent_plan.model_version, 120, start=recent_plan.test_origin, seed=9)
    table = pa.Table.from_pandas(more, preserve_index=False)
    parsed = parse_rows(reference, {c: table.column(c) for c in table.column_names}, table.num_rows, declared=True)
    window = MonitoringWindow.objects.get(plan=recent_plan)
    start, end = window.aggregate["start"], window.aggregate["end"]
    doc = WindowAggregate.empty(reference, start, end).add(parsed).to_json()
    response = client.post(f"/api/v1/monitoring/plans/{recent_plan.pk}/aggregates", doc, format="json")
    assert response.status_code == 201, response.content
    assert client.post(f"/api/v1/monitoring/plans/{recent_plan.pk}/aggregates", doc, format="json").status_code == 200
    wrong = {**doc, "rows": doc["rows"] + 1}
    assert client.post(f"/api/v1/monitoring/plans/{recent_plan.pk}/aggregates", wrong, format="json").status_code == 400
    window.refresh_from_db()
    assert window.rows == 370
    windows_close()
    listing = client.get(f"/api/v1/monitoring/plans/{recent_plan.pk}/windows").json()
    assert listing[0]["state"] == "closed" and listing[0]["evaluation"]["window"]["digest"] == listing[0]["aggregate_digest"]
    plan = client.get(f"/api/v1/monitoring/plans/{recent_plan.pk}").json()
    assert plan["columns"]["score"] == "score" and plan["policy"]["version"] == 3


def test_release_status_carries_the_monitoring_health(recent_plan, monitoring_people, client_of):
    client = client_of(monitoring_people["pipeline"])
    mv = recent_plan.model_version
    query = {"model": mv.model.name, "version": mv.version, "environment": "production"}
    health = client.get("/api/v1/releases/status", query).json()["facts"]["monitoring"]
    assert health["status"].startswith("no data since")
    rows, _ = scored_rows(mv, 300, start=recent_plan.test_origin + 2 * WEEK, step=timedelta(minutes=1))
    assert post_batch(client, recent_plan, rows).status_code == 201
    health = client.get("/api/v1/releases/status", query).json()["facts"]["monitoring"]
    assert health["status"] == "inconclusive" and health["plan_id"] == recent_plan.pk
    windows_close()
    health = client.get("/api/v1/releases/status", query).json()["facts"]["monitoring"]
    assert health["status"] in ("ok", "warn", "alert", "inconclusive") and health["last_window"]["ledger_seq"]
    staging = client.get("/api/v1/releases/status", {**query, "environment": "staging"}).json()
    assert staging["facts"]["monitoring"] is None


def test_the_schema_describes_the_monitoring_api(api_client, monitoring_people):
    api_client.force_authenticate(monitoring_people["admin"])
    schema = api_client.get("/api/v1/schema/", {"format": "json"}).json()
    for p in ("/api/v1/monitoring/plans/{id}/batches", "/api/v1/monitoring/plans/{id}/labels",
              "/api/v1/monitoring/plans/{id}/aggregates", "/api/v1/monitoring/plans/{id}/windows"):
        assert p in schema["paths"], sorted(schema["paths"])
    assert "413" in schema["paths"]["/api/v1/monitoring/plans/{id}/batches"]["post"]["responses"]


def test_findings_are_listed_for_the_callers_units(production_plan, monitoring_people, client_of, make_user, other_unit):
    from governance.monitoring.models import Finding
    from governance.monitoring.services import batch_ingest
    from governance.rules import roles

    rows, _ = scored_rows(production_plan.model_version, 400, start=PLAN_ORIGIN, shift=1.8, step=timedelta(minutes=20))
    batch_ingest(plan=production_plan, source=io.BytesIO(rows.to_csv(index=False).encode()), file_format="csv",
                 actor=monitoring_people["pipeline"], now=PLAN_ORIGIN + timedelta(days=1))
    windows_close(now=PLAN_ORIGIN + WEEK)
    validator = APIClient()
    validator.force_authenticate(monitoring_people["validator"])
    body = validator.get("/api/v1/monitoring/findings", {"state": "open"}).json()
    assert body["count"] == Finding.objects.count() > 0
    assert {r["column"] for r in body["results"]} >= {"credit_amount"}
    assert validator.get("/api/v1/monitoring/findings", {"state": "nonsense"}).status_code == 400
    outsider = APIClient()
    outsider.force_authenticate(make_user(roles.MODEL_RISK_VALIDATOR, [other_unit]))
    assert outsider.get("/api/v1/monitoring/findings").json()["count"] == 0
