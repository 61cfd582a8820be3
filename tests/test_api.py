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
