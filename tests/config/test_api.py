"""The API skeleton: schema, docs without a CDN, pagination and throttling."""

import json
import re

import hypothesis
import pytest
from django.core.management import call_command
from hypothesis import strategies as st

from config import parsers as config_parsers
from governance.rules import roles


def test_openapi_schema_generates_without_warnings(db, tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "openapi: 3" in text and "bearerAuth" in text


def test_the_schema_says_what_the_server_does(client, make_user):
    """What a schema-driven client met that was not so (issue 13, item 13)."""
    client.force_login(make_user())
    schema = client.get("/api/v1/schema/?format=json").json()
    components = schema["components"]["schemas"]
    listed = schema["paths"]["/api/v1/releases"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"$ref": "#/components/schemas/PaginatedReleaseList"}  # was a bare array
    assert {"count", "next", "previous", "results"} <= set(components["PaginatedReleaseList"]["properties"])
    for component, field in (("ModelOutput", "owner"), ("GatePolicyOutput", "created_by"),
                             ("GateRunOutput", "submitted_by"), ("DatasetVersionOutput", "created_by")):
        assert components[component]["properties"][field].get("nullable") is True, (component, field)
    request = schema["paths"]["/api/v1/releases"]["post"]["requestBody"]["content"]["application/json"]
    for example in request["examples"].values():  # a request that works: either field, never both
        assert ("model" in example["value"]) != ("model_version" in example["value"])
    approvals = components["ReleaseApproval"]
    assert "justification" not in approvals["required"]  # a pipeline does not receive it
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code in ("400", "401", "403", "429", *(("404",) if "{" in path else ()),
                         *(("413", "415") if method == "post" else ())):
                content = operation["responses"].get(code, {}).get("content", {})
                assert set(content) == {"application/problem+json"}, (method, path, code)
                assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_schema_endpoint_and_docs_page_use_local_assets(client, make_user):
    client.force_login(make_user())
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    docs = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in docs
    # Every asset the page loads is served here (a substring check once failed on a CSRF token
    # that happened to contain "cdn"): each src/href is a local path, none names another host.
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", docs)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    assert not re.search(r"https?://", " ".join(re.findall(r"<script[^>]*>", docs)))
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


# --- JSON nesting depth (issue #13, item 8) ------------------------------------------------------


def _nested(levels, kind, inner="1"):
    """JSON text of LEVELS nested lists or single-key objects around INNER."""
    opening, closing = ("[", "]") if kind == "list" else ('{"a": ', "}")
    return opening * levels + inner + closing * levels


def _run_body(unit, dataset_version, parameters_json):
    head = json.dumps({"business_unit": unit.slug, "inputs": [{"dataset_version": dataset_version.pk, "role": "train"}]})
    return head[:-1] + ', "parameters": ' + parameters_json + "}"  # the body object is level 1


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_json_nested_at_the_limit_is_accepted_and_past_it_is_a_400(token_client, unit, german_credit_version, kind):
    """64 levels in all pass (the body, `parameters`, then lists or objects); 65 are refused."""
    from audit.models import LedgerEntry
    from config.parsers import MAX_JSON_DEPTH

    def parameters(levels):  # `parameters` must be an object: lists go inside it
        return _nested(levels, "dict") if kind == "dict" else '{"a": ' + _nested(levels - 1, "list") + "}"

    at_limit = _run_body(unit, german_credit_version, parameters(MAX_JSON_DEPTH - 1))
    assert config_parsers.json_depth(at_limit) == MAX_JSON_DEPTH == 64
    response = token_client.post("/api/v1/training-runs", at_limit, content_type="application/json")
    assert response.status_code == 201, response.content
    stored = response.json()["parameters"]
    for _ in range(MAX_JSON_DEPTH - 2):
        stored = stored["a"] if isinstance(stored, dict) else stored[0]
    assert stored in (1, [1], {"a": 1})
    before = LedgerEntry.objects.count()
    too_deep = _run_body(unit, german_credit_version, parameters(MAX_JSON_DEPTH))
    response = token_client.post("/api/v1/training-runs", too_deep, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert "at most 64 levels" in response.json()["detail"]
    assert LedgerEntry.objects.count() == before


@pytest.mark.parametrize(
    "body",
    ["[" * 390 + "]" * 390, "[" * 10_000 + "]" * 10_000, '{"a": ' * 10_000 + "1" + "}" * 10_000, "[" * 10_000],
    ids=["attacker-781-bytes", "lists-10000", "objects-10000", "unclosed-10000"],
)
def test_deeply_nested_json_is_a_400_problem_not_a_500(token_client, body):
    token_client.raise_request_exception = False
    response = token_client.post("/api/v1/models", body, content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert response["Content-Type"].startswith("application/problem+json")
    assert "at most 64 levels" in response.json()["detail"]


def test_brackets_and_quotes_inside_strings_do_not_count_as_nesting(token_client, unit, german_credit_version):
    tricky = {"s": "[" * 100 + '\\"{{{' + "]" * 3, "t": '"' * 50, "u": "\\" * 9}
    body = _run_body(unit, german_credit_version, json.dumps(tricky))
    response = token_client.post("/api/v1/training-runs", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["parameters"] == tricky


def test_nul_is_found_at_any_depth(token_client, unit, german_credit_version):
    body = _run_body(unit, german_credit_version, _nested(60, "dict", inner='["x", {"k\\u0000": 1}]'))
    response = token_client.post("/api/v1/training-runs", body, content_type="application/json")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


_TRICKY_TEXT = st.text(alphabet='[]{}"\\,: a\u00e9\n\x00', max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY_TEXT, inner, max_size=4),
    max_leaves=40,
)


def _nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_nul(k) or _nul(v) for k, v in value.items())
    return isinstance(value, list) and any(map(_nul, value))


@hypothesis.settings(max_examples=500, deadline=None)
@hypothesis.given(_JSON, st.booleans(), st.sampled_from([None, 0, 2]))
def test_json_depth_and_nul_check_agree_with_the_recursive_definitions(value, ascii_only, indent):
    """The iterative checks against the plain recursive definitions, on JSON full of brackets, quotes, backslashes."""
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    assert config_parsers.json_depth(text) == _depth(value)
    assert config_parsers.holds_nul(value) == _nul(value)


def test_the_api_root_points_to_the_docs(client):
    response = client.get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert body["docs"].endswith("/api/v1/docs/") and body["schema"].endswith("/api/v1/schema/")
    assert client.get(body["docs"].replace("http://testserver", "")).status_code == 200


def test_a_chunked_body_is_411_not_an_empty_body(token_client, unit):
    """Django reads a body only up to its Content-Length: a chunked one arrived empty and was
    answered "field required". A buffering proxy sends the length; without one, say so."""
    response = token_client.post("/api/v1/datasets", {"business_unit": unit.slug, "name": "d"}, format="json",
                                 HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411 and response["Content-Type"] == "application/problem+json"
    assert "Content-Length" in response.json()["detail"]
    assert token_client.post("/api/v1/datasets", {"business_unit": unit.slug, "name": "d"},
                             format="json").status_code == 201
