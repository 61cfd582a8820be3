"""The API skeleton: schema, docs without a CDN, pagination and throttling."""

from django.core.management import call_command

from governance import roles


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
