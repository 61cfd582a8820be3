"""The API skeleton: schema, docs without a CDN, pagination and throttling."""

from django.core.management import call_command

from governance.rules import roles


def test_openapi_schema_generates_without_warnings(db, tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "openapi: 3" in text and "bearerAuth" in text


def test_schema_endpoint_and_docs_page_use_local_assets(client, make_user):
    client.force_login(make_user())
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    docs = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in docs
    assert "cdn" not in docs.lower() and "unpkg" not in docs.lower()
    assert "/static/drf_spectacular_sidecar/" in docs


def test_lists_are_paginated(client, make_user):
    from audit.services import ledger_append

    for i in range(3):
        ledger_append(kind="test.recorded", subject=f"governance.modelversion:{i}", payload={}, actor=None)
    client.force_login(make_user("Auditor"))
    page = client.get("/api/v1/ledger/entries?page_size=2").json()
    assert page["count"] >= 3 and len(page["results"]) == 2 and page["next"]


def test_requests_over_the_rate_are_429_problems(token_client, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import UserRateThrottle

    cache.clear()
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min", "anon": "2/min"})
    assert [token_client.get("/api/v1/me").status_code for _ in range(2)] == [200, 200]
    response = token_client.get("/api/v1/me")
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 429 and "Retry-After" in response
    cache.clear()


def test_the_rate_is_counted_in_fixed_windows(token_client, monkeypatch):
    """One counter per client and window (O(1) per request, exact across workers with a shared
    cache): the third request of a 2/min window waits for the window's end, then passes."""
    from django.core.cache import cache
    from rest_framework.throttling import UserRateThrottle

    from config import throttling

    clock = [610.0]  # ten seconds into the window [600, 660)
    monkeypatch.setattr(throttling.UserRateThrottle, "timer", lambda self: clock[0])
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min", "anon": "2/min"})
    cache.clear()
    assert [token_client.get("/api/v1/me").status_code for _ in range(2)] == [200, 200]
    clock[0] = 630.0
    refused = token_client.get("/api/v1/me")
    assert refused.status_code == 429 and refused["Retry-After"] == "30"
    clock[0] = 660.0  # the next window: a sliding log would still hold the two requests of 610
    assert token_client.get("/api/v1/me").status_code == 200
    cache.clear()


def test_problem_titles_are_plain_text_not_message_templates(token_client):
    """DRF's 405 and 415 default messages are templates ('Method "{method}" not allowed.');
    a problem document's title must never show the raw placeholder."""
    wrong_type = token_client.post("/api/v1/datasets", "x", content_type="text/plain")
    assert wrong_type.status_code == 415
    assert wrong_type.json()["title"] == "Unsupported Media Type."
    assert "text/plain" in wrong_type.json()["detail"]
    wrong_method = token_client.delete("/api/v1/datasets")
    assert wrong_method.status_code == 405
    body = wrong_method.json()
    assert "{" not in body["title"] and body["title"] == "Method Not Allowed."
    assert body["detail"] == 'Method "DELETE" not allowed.'


def test_nul_characters_in_json_are_a_400_on_every_database(token_client, unit, german_credit_version):
    """PostgreSQL stores NUL neither in text nor in jsonb: without a check at the parser these
    bodies were 500s there (and silently accepted on SQLite)."""
    from audit.models import LedgerEntry

    before = LedgerEntry.objects.count()
    run = {
        "business_unit": unit.slug,
        "inputs": [{"dataset_version": german_credit_version.pk, "role": "train"}],
        "parameters": {"a": "x\u0000y"},
    }
    event = {
        "eventType": "START", "eventTime": "2024-01-01T00:00:00Z", "producer": "p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "3f5e83fa-3480-44ff-99c5-ff943cd8e4b5"}, "job": {"namespace": unit.slug, "name": "j\u0000"},
    }
    reference = {"version": "v", "uri": "s3://a/b", "sha256": "a" * 64, "schema": [{"name": "x\u0000", "type": "t"}]}
    for path, body in [
        ("/api/v1/training-runs", run),
        ("/api/v1/lineage", event),
        (f"/api/v1/datasets/{german_credit_version.dataset_id}/references", reference),
        ("/api/v1/datasets", {"business_unit": unit.slug, "name": "d", "description": "\u0000"}),
    ]:
        response = token_client.post(path, body, format="json")
        assert response.status_code == 400, (path, response.content)
        assert response["Content-Type"].startswith("application/problem+json")
        assert "NUL" in response.json()["detail"]
    assert LedgerEntry.objects.count() == before


def test_nul_in_a_query_string_is_a_400_not_a_database_error(token_client, make_user):
    """On PostgreSQL a NUL reaching a filter raised DataError: the API's ?artifact_sha256=, an
    admin list filter and the admin autocomplete's term were 500s."""
    from django.test import Client

    token_client.raise_request_exception = False
    response = token_client.get("/api/v1/model-versions?artifact_sha256=%00")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json") and "NUL" in response.json()["detail"]
    admin = Client(raise_request_exception=False)
    admin.force_login(make_user(roles.AUDITOR, []))
    for path in [
        "/admin/governance/modelversion/?framework=%00",
        "/admin/autocomplete/?app_label=governance&model_name=dataset&field_name=business_unit&term=%00",
    ]:
        assert admin.get(path).status_code == 400, path
    assert admin.get("/admin/governance/modelversion/?framework=sklearn").status_code == 200


def test_a_json_body_past_the_memory_limit_is_a_413_problem(token_client, unit, settings):
    """Django raises RequestDataTooBig while DRF parses; it used to escape as a 500."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    token_client.raise_request_exception = False
    response = token_client.post("/api/v1/datasets", {"business_unit": unit.slug, "name": "d" * 2000}, format="json")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 413
