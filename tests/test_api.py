"""The API skeleton: schema, docs without a CDN, pagination and throttling configured."""

from django.core.management import call_command


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


def test_throttling_and_pagination_are_on(settings):
    rf = settings.REST_FRAMEWORK
    assert rf["DEFAULT_THROTTLE_CLASSES"] and rf["DEFAULT_PAGINATION_CLASS"] == "config.api.Pagination"
