"""Release API: the pipeline's calls, idempotent POSTs, problem documents, and the permission matrix."""

import json

import pytest
from rest_framework.test import APIClient

from audit.attestation import verify_artifact
from audit.verifier import load_verifier_keys
from audit.keys import signing_key
from governance.rules import roles
from governance.models import ReleaseRequest
from governance.rules.releases import State
from governance.services.access import token_create
from governance.services.releases import release_decide, release_request
from tests.gate_verdicts import record_gate_verdict

CO, MRV, DS, PIPE, AUD = (
    roles.COMPLIANCE_OFFICER,
    roles.MODEL_RISK_VALIDATOR,
    roles.DATA_SCIENTIST,
    roles.PIPELINE,
    roles.AUDITOR,
)
WHY = "Reviewed the gate evidence and the lineage."


def client_for(user):
    client = APIClient()
    if user.groups.filter(name=PIPE).exists():
        _, plain = token_create(user=user, name="test")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    else:
        client.force_login(user)
    return client


def record_gates(release, verdict="passed"):
    return record_gate_verdict(release, verdict)


def status_of(client, mv, environment="production"):
    return client.get(
        "/api/v1/releases/status",
        {"model": mv.model.name, "version": mv.version, "environment": environment},
    )


@pytest.fixture
def requester(make_user, unit):
    return make_user(DS, [unit])


def test_pipeline_requests_a_release_by_name_and_reads_it(token_client, credit_model_version):
    mv = credit_model_version
    response = token_client.post(
        "/api/v1/releases", {"model": mv.model.name, "version": mv.version, "environment": "production"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "gating" and body["artifact_sha256"] == mv.artifact_sha256
    assert body["approval_policy"]["rule"]["required_roles"] == [MRV, CO]
    assert token_client.get(f"/api/v1/releases/{body['id']}").json()["id"] == body["id"]
    listed = token_client.get("/api/v1/releases").json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]


def test_request_by_model_version_id(token_client, credit_model_version):
    response = token_client.post(
        "/api/v1/releases", {"model_version": credit_model_version.pk, "environment": "staging"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["model_version_id"] == credit_model_version.pk


@pytest.mark.parametrize(
    "body,field",
    [
        ({"environment": "production"}, "non_field_errors"),
        ({"model_version": 1, "environment": "moon"}, "environment"),
        ({"model": "x"}, "environment"),
    ],
)
def test_bad_requests_are_problem_documents(token_client, credit_model_version, body, field):
    response = token_client.post("/api/v1/releases", body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert field in response.json()["errors"]


def test_unknown_model_version_is_404(token_client, credit_model_version):
    response = token_client.post("/api/v1/releases", {"model": "nope", "version": "1", "environment": "staging"}, format="json")
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_a_second_open_request_is_409(token_client, credit_model_version):
    body = {"model_version": credit_model_version.pk, "environment": "production"}
    assert token_client.post("/api/v1/releases", body, format="json").status_code == 201
    response = token_client.post("/api/v1/releases", body, format="json")
    assert response.status_code == 409 and response.json()["code"] == "conflict"


def test_idempotency_key_replays_instead_of_acting_twice(token_client, credit_model_version):
    body = {"model_version": credit_model_version.pk, "environment": "production"}
    first = token_client.post("/api/v1/releases", body, format="json", HTTP_IDEMPOTENCY_KEY="deploy-42")
    again = token_client.post("/api/v1/releases", body, format="json", HTTP_IDEMPOTENCY_KEY="deploy-42")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert ReleaseRequest.objects.count() == 1
    other = token_client.post(
        "/api/v1/releases", {**body, "environment": "staging"}, format="json", HTTP_IDEMPOTENCY_KEY="deploy-42"
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert ReleaseRequest.objects.count() == 1


def test_a_repeat_while_the_first_is_in_flight_is_409(pipeline_token, token_client, credit_model_version):
    import hashlib

    from config.idempotency.api import IN_FLIGHT
    from config.idempotency.models import IdempotencyRecord

    body = {"model_version": credit_model_version.pk, "environment": "production"}
    same_request = f"POST /api/v1/releases\n{json.dumps(body, sort_keys=True, separators=(',', ':'))}"
    IdempotencyRecord.objects.create(  # as the first request leaves it while it runs
        user=pipeline_token[0], key="k1", endpoint="releases.request",
        request_sha256=hashlib.sha256(same_request.encode()).hexdigest(), status_code=IN_FLIGHT, response={},
    )
    response = token_client.post("/api/v1/releases", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 409 and response.json()["code"] == "idempotency_key_in_flight"
    assert not ReleaseRequest.objects.exists()


def test_idempotency_keys_are_per_caller_and_failures_are_not_stored(make_user, unit, credit_model_version):
    body = {"model_version": credit_model_version.pk, "environment": "production"}
    a, b = client_for(make_user(PIPE, [unit])), client_for(make_user(PIPE, [unit]))
    bad = a.post("/api/v1/releases", {"environment": "production"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert bad.status_code == 400
    assert a.post("/api/v1/releases", body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    # Another caller's same key is another action: here a conflict, not a replay of a's answer.
    assert b.post("/api/v1/releases", body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 409


def test_idempotent_decision(make_user, unit, requester, credit_model_version):
    release = record_gates(release_request(model_version=credit_model_version, environment="production", actor=requester))
    validator = client_for(make_user(MRV, [unit]))
    body = {"decision": "approve", "role": MRV, "justification": WHY}
    url = f"/api/v1/releases/{release.pk}/decisions"
    assert validator.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="d1").status_code == 200
    again = validator.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="d1")
    assert again.status_code == 200 and len(again.json()["approvals"]) == 1
    # Without the key, the repeat is refused by the segregation rules instead.
    assert validator.post(url, body, format="json").status_code == 403


def test_status_answers_the_pipeline_and_the_attestation_verifies(
    make_user, unit, requester, credit_model_version, token_client, tmp_path, credit_model_artifact,
    django_capture_on_commit_callbacks,
):
    mv = credit_model_version
    missing = status_of(token_client, mv).json()
    assert missing["approved"] is False and missing["state"] is None and missing["release_id"] is None
    release = record_gates(release_request(model_version=mv, environment="production", actor=requester))
    pending = status_of(token_client, mv).json()
    assert pending == {**pending, "approved": False, "state": "awaiting_approval", "release_id": release.pk,
                       "attestation": None, "artifact_sha256": mv.artifact_sha256}
    officer, validator = client_for(make_user(CO, [unit])), client_for(make_user(MRV, [unit]))
    url = f"/api/v1/releases/{release.pk}/decisions"
    assert validator.post(url, {"decision": "approve", "role": MRV, "justification": WHY}, format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):  # the attestation is signed once the approval commits
        assert officer.post(url, {"decision": "approve", "role": CO, "justification": WHY}, format="json").status_code == 200
    status = status_of(token_client, mv).json()
    assert status["approved"] is True and status["state"] == "approved"
    # The pipeline saves the envelope and checks it against the file it is about to deploy.
    (tmp_path / "release.dsse.json").write_text(json.dumps(status["attestation"]))
    (tmp_path / "model.skops").write_bytes(credit_model_artifact[0])
    envelope = json.loads((tmp_path / "release.dsse.json").read_text())
    stmt = verify_artifact(envelope, load_verifier_keys([signing_key().verifier_key]), tmp_path / "model.skops")
    assert stmt["subject"][0]["digest"]["sha256"] == mv.artifact_sha256
    bare = token_client.get(f"/api/v1/releases/{release.pk}/attestation")
    assert bare.status_code == 200 and bare.json() == status["attestation"]
    assert status_of(token_client, mv, "staging").json()["approved"] is False


def test_status_needs_its_parameters(token_client, credit_model_version):
    response = token_client.get("/api/v1/releases/status", {"model": "x"})
    assert response.status_code == 400 and set(response.json()["errors"]) == {"version", "environment"}
    response = token_client.get("/api/v1/releases/status", {"model": "x", "version": "1", "environment": "moon"})
    assert response.status_code == 400


def test_conflicting_and_refused_decisions(make_user, unit, requester, credit_model_version):
    release = release_request(model_version=credit_model_version, environment="production", actor=requester)
    validator = client_for(make_user(MRV, [unit]))
    url = f"/api/v1/releases/{release.pk}/decisions"
    body = {"decision": "approve", "role": MRV, "justification": WHY}
    early = validator.post(url, body, format="json")
    assert early.status_code == 409 and "gating" in early.json()["detail"]
    record_gates(release)
    short = validator.post(url, {**body, "justification": "fine"}, format="json")
    assert short.status_code == 400 and "justification" in short.json()["errors"]
    wrong_role = validator.post(url, {**body, "role": CO}, format="json")
    assert wrong_role.status_code == 403
    own = client_for(requester).post(url, body, format="json")
    assert own.status_code == 403
    revoke = client_for(make_user(CO, [unit])).post(f"/api/v1/releases/{release.pk}/revoke", {"justification": WHY}, format="json")
    assert revoke.status_code == 409


def test_revocation_through_the_api(make_user, unit, requester, credit_model_version, token_client):
    release = record_gates(release_request(model_version=credit_model_version, environment="production", actor=requester))
    officer_user = make_user(CO, [unit])
    release_decide(release=release, actor=make_user(MRV, [unit]), role=MRV, decision="approve", justification=WHY)
    release_decide(release=release, actor=officer_user, role=CO, decision="approve", justification=WHY)
    response = client_for(officer_user).post(
        f"/api/v1/releases/{release.pk}/revoke", {"justification": "Drift found in production."}, format="json"
    )
    assert response.status_code == 200 and response.json()["state"] == "revoked"
    status = status_of(token_client, credit_model_version).json()
    assert status["approved"] is False and status["state"] == "revoked" and status["attestation"] is None


def test_anonymous_callers_get_401(api_client, credit_model_version):
    assert api_client.get("/api/v1/releases").status_code == 401
    assert api_client.post("/api/v1/releases", {}, format="json").status_code == 401


# --- permission matrix: roles × business units × actions -------------------------------------

# role, in own unit?, list sees it, read, status, request, decide
MATRIX = [
    (DS, True, 1, 200, 200, 201, 403),
    (DS, False, 0, 404, 404, 404, 404),
    (PIPE, True, 1, 200, 200, 201, 403),
    (PIPE, False, 0, 404, 404, 404, 404),
    (CO, True, 1, 200, 200, 403, 200),
    (CO, False, 0, 404, 404, 404, 404),
    (MRV, True, 1, 200, 200, 403, 200),
    (MRV, False, 0, 404, 404, 404, 404),
    (AUD, None, 1, 200, 200, 403, 403),
]


@pytest.mark.parametrize("role,own,sees,read,status,ask,decide", MATRIX)
def test_permission_matrix(make_user, unit, other_unit, requester, make_credit_model_version,
                           role, own, sees, read, status, ask, decide):
    mv = make_credit_model_version(unit, version="1.0")
    release = record_gates(release_request(model_version=mv, environment="production", actor=requester))
    units = [] if own is None else [unit if own else other_unit]
    client = client_for(make_user(role, units))
    assert client.get("/api/v1/releases").json()["count"] == sees
    assert client.get(f"/api/v1/releases/{release.pk}").status_code == read
    assert status_of(client, mv).status_code == status
    assert client.post(
        "/api/v1/releases", {"model_version": mv.pk, "environment": "staging"}, format="json"
    ).status_code == ask
    decision_role = role if role in (CO, MRV) else MRV
    response = client.post(
        f"/api/v1/releases/{release.pk}/decisions",
        {"decision": "approve", "role": decision_role, "justification": WHY},
        format="json",
    )
    assert response.status_code == decide
    release.refresh_from_db()
    assert release.state == State.AWAITING_APPROVAL  # one approval never completes high → production


def test_status_of_a_superseded_version(make_user, unit, requester, make_credit_model_version, token_client):
    validator, officer = make_user(MRV, [unit]), make_user(CO, [unit])
    versions = [make_credit_model_version(unit, version=v) for v in ("1.0", "2.0")]
    for mv in versions:
        release = record_gates(release_request(model_version=mv, environment="production", actor=requester))
        release_decide(release=release, actor=validator, role=MRV, decision="approve", justification=WHY)
        release_decide(release=release, actor=officer, role=CO, decision="approve", justification=WHY)
    old, new = (status_of(token_client, mv).json() for mv in versions)
    assert (old["approved"], old["state"], old["attestation"]) == (False, "superseded", None)
    assert (new["approved"], new["state"]) == (True, "approved")


def test_pipelines_read_releases_without_the_approvers_justifications(token_client, make_user, unit, requester,
                                                                       credit_model_version):
    """A pipeline reads a release and its attestation (which carries only the justification's
    hash), not the written reasons of the approval records behind it; people with
    governance.view_approval still read them, in the detail and in the list."""
    release = record_gates(release_request(model_version=credit_model_version, environment="production",
                                           actor=requester))
    release_decide(release=release, actor=make_user(MRV, [unit]), role=MRV, decision="approve", justification=WHY)
    for path in (f"/api/v1/releases/{release.pk}", "/api/v1/releases"):
        body = token_client.get(path).json()
        approvals = body["approvals"] if "approvals" in body else body["results"][0]["approvals"]
        assert approvals and approvals[0]["decision"] == "approve"
        assert "justification" not in approvals[0] and WHY not in json.dumps(body)
        for reader in (make_user(CO, [unit]), make_user(AUD), requester):
            body = client_for(reader).get(path).json()
            approvals = body["approvals"] if "approvals" in body else body["results"][0]["approvals"]
            assert approvals[0]["justification"] == WHY
