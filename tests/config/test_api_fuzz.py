"""Schema-driven fuzzing of every API operation (schemathesis), as a pipeline and as a person.

Every operation of the OpenAPI schema is called with cases generated from the schema itself, once
with a pipeline's bearer token and once with a person's session (CSRF enforced, as a browser
sends it). No answer may be a server error, and every answer must be one the schema describes:
its status, its content type and its body. The run is bounded (a fixed number of cases per
operation, derandomised, no shrinking) so that both take about a minute together.
"""

import collections
import os
import time

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from audit.models import LedgerEntry
from governance.models import GateRun, TrainingRun
from governance.rules import roles
from governance.services.releases import release_request

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

CASES_PER_OPERATION = int(os.environ.get("CUSTOS_FUZZ_CASES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def wsgi_app(db):
    """The WSGI application, in this process and on the test database. As Django's test client
    does, it keeps the connection open across requests: its handler closes it at each request's
    end, which on PostgreSQL ends the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app):
    return schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app)


@pytest.fixture
def records(unit, credit_model_version, gate_policy, make_user):
    """Something to find, by the id of each kind of record a path names: a model, its version,
    training run and data, a gate policy and run, a release, a ledger entry."""
    mv = credit_model_version
    release = release_request(model_version=mv, environment="production", actor=make_user(roles.DATA_SCIENTIST, [unit]))
    dataset_version = TrainingRun.objects.get(model_version=mv).inputs.get().dataset_version
    return {
        "/api/v1/dataset-versions/": dataset_version.pk,
        "/api/v1/datasets/": dataset_version.dataset_id,
        "/api/v1/gates/policies/": gate_policy.pk,
        "/api/v1/gates/runs/": getattr(GateRun.objects.first(), "pk", 1),
        "/api/v1/ledger/entries/": LedgerEntry.objects.order_by("seq").values_list("seq", flat=True).first() or 0,
        "/api/v1/model-versions/": mv.pk,
        "/api/v1/models/": mv.model_id,
        "/api/v1/releases/": release.pk,
        "/api/v1/training-runs/": TrainingRun.objects.get(model_version=mv).pk,
    }


def _session_headers(user):
    """(headers, cookies) of USER's browser: a session, a CSRF cookie and the token a page gave it.
    No request is made for them (the test client's requests would restore the connection closing
    that ``wsgi_app`` turns off)."""
    client = Client()
    assert client.login(username=user.username, password="correct-horse-battery")
    page = RequestFactory().get("/admin/")
    token = get_token(page)
    cookies = {"csrftoken": page.META["CSRF_COOKIE"], "sessionid": client.cookies["sessionid"].value}
    return {"X-CSRFToken": token}, cookies


def _strategies(operation, records):
    """Cases of OPERATION: wholly generated and, where its path names a record, about a record
    that exists (so that the view's own checks run, not only its 404)."""
    yield operation.as_strategy()
    for prefix, pk in records.items():
        if operation.path.startswith(prefix) and "{" in operation.path:
            name = operation.path[len(prefix):].split("}")[0].lstrip("{")
            yield operation.as_strategy(path_parameters={name: pk})


def _fuzz(api_schema, records, headers, cookies=None):
    failures, started, statuses = {}, time.monotonic(), collections.Counter()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for strategy in _strategies(operation, records):
            _fuzz_operation(operation, strategy, headers, cookies, failures, statuses)
    return failures, statuses, time.monotonic() - started


def _fuzz_operation(operation, strategy, headers, cookies, failures, statuses):
    @settings(max_examples=CASES_PER_OPERATION, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def call(case):
        response = case.call(headers=headers, cookies=cookies)
        statuses[(operation.method.upper(), operation.path, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # every operation's findings, not the first only
            failures.setdefault(f"{operation.method.upper()} {operation.path}", str(exc)[:1500])

    call()


def _assert_reached(statuses, seconds):
    """The run was a real one: authenticated (answers other than 401/403 where it may read and
    write), and within its time."""
    by_operation = collections.defaultdict(set)
    for (method, path, status), _ in statuses.items():
        by_operation[(method, path)].add(status)
    assert len(by_operation) >= 30, sorted(by_operation)
    read = [op for op, codes in by_operation.items() if op[0] == "GET" and codes & {200, 400, 404}]
    assert len(read) >= 20, dict(by_operation)
    written = [op for op, codes in by_operation.items() if op[0] == "POST" and codes - {401, 403}]
    assert len(written) >= 8, dict(by_operation)  # past authentication and, for a session, CSRF
    assert seconds < 240  # about 35 s on an idle 2-core machine


def test_fuzz_as_a_pipeline(api_schema, records, pipeline_token):
    failures, statuses, seconds = _fuzz(api_schema, records, {"Authorization": f"Bearer {pipeline_token[1]}"})
    assert not failures, "\n\n".join(f"{op}: {text}" for op, text in failures.items())
    _assert_reached(statuses, seconds)


def test_fuzz_as_a_person_with_a_session(api_schema, records, make_user, unit):
    person = make_user(roles.DATA_SCIENTIST, [unit])
    failures, statuses, seconds = _fuzz(api_schema, records, *_session_headers(person))
    assert not failures, "\n\n".join(f"{op}: {text}" for op, text in failures.items())
    _assert_reached(statuses, seconds)
