"""The reports API: 202 and a worker's rendering, state and file, verify by SHA-256, and scoping
(auditors everything, officers their units, another unit's report a 404)."""

import hashlib
import json

import pytest
from django.test import TestCase
from rest_framework.test import APIClient

from governance.rules import roles


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def officer(make_user, unit):
    return make_user(roles.COMPLIANCE_OFFICER, [unit], username="api-officer")


def test_post_is_202_the_worker_issues_it_and_the_file_and_hash_answer(reported_version, officer):
    client = client_for(officer)
    with TestCase.captureOnCommitCallbacks(execute=True):  # the eager worker runs after the commit
        response = client.post("/api/v1/reports", {"kind": "ml-bom", "subject": reported_version.ledger_subject},
                               format="json")
    assert response.status_code == 202, response.content
    report_id = response.json()["id"]
    detail = client.get(f"/api/v1/reports/{report_id}").json()
    assert (detail["state"], detail["progress"], detail["issuer"]) == ("issued", 100, "api-officer")
    file = client.get(f"/api/v1/reports/{report_id}/pdf")
    assert file.status_code == 200 and file["Content-Type"] == "application/vnd.cyclonedx+json"
    assert hashlib.sha256(file.content).hexdigest() == detail["sha256"]
    assert json.loads(file.content)["specVersion"] == "1.6"
    assert client.get(f"/api/v1/reports/{report_id}/ml-bom").content == file.content
    verified = client.get("/api/v1/reports/verify", {"sha256": detail["sha256"]})
    assert verified.status_code == 200 and verified.json()["id"] == report_id
    assert client.get("/api/v1/reports/verify", {"sha256": "0" * 64}).status_code == 404
    bad = client.get("/api/v1/reports/verify", {"sha256": "nope"})
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/problem+json")


def test_another_units_report_is_404_and_the_auditor_reads_all(reported_version, officer, make_user, other_unit, issue):
    report = issue("ml-bom", reported_version.ledger_subject, officer)
    stranger = client_for(make_user(roles.COMPLIANCE_OFFICER, [other_unit], username="elsewhere"))
    for path in (f"/api/v1/reports/{report.pk}", f"/api/v1/reports/{report.pk}/pdf"):
        assert stranger.get(path).status_code == 404
    assert stranger.get("/api/v1/reports/verify", {"sha256": report.sha256}).status_code == 404
    assert stranger.get("/api/v1/reports").json()["count"] == 0
    # Nor may they ask for one about a version they cannot see: it looks absent.
    asked = stranger.post("/api/v1/reports", {"kind": "dossier", "subject": reported_version.ledger_subject},
                          format="json")
    assert asked.status_code == 404
    auditor = client_for(make_user(roles.AUDITOR, username="api-auditor"))
    assert auditor.get(f"/api/v1/reports/{report.pk}").status_code == 200
    # A data scientist reads the unit's reports but does not issue them.
    scientist = client_for(make_user(roles.DATA_SCIENTIST, [reported_version.model.business_unit], username="ds"))
    assert scientist.get(f"/api/v1/reports/{report.pk}").status_code == 200
    assert scientist.post("/api/v1/reports", {"kind": "ml-bom", "subject": reported_version.ledger_subject},
                          format="json").status_code == 403


@pytest.mark.parametrize("body", [{"kind": "erasure-certificate", "subject": "governance.modelversion:1"},
                                  {"kind": "dossier", "subject": "governance.businessunit:1"},
                                  {"kind": "inventory", "subject": "governance.modelversion:1"}, {}])
def test_bad_requests_are_400_problems(officer, body):
    response = client_for(officer).post("/api/v1/reports", body, format="json")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/problem+json")


def test_the_schema_documents_the_reports_endpoints(db, client, make_user):
    client.force_login(make_user(roles.AUDITOR, username="schema-reader"))
    schema = client.get("/api/v1/schema/?format=json").json()
    for path in ("/api/v1/reports", "/api/v1/reports/{id}", "/api/v1/reports/{id}/pdf", "/api/v1/reports/verify",
                 "/api/v1/reports/{id}/ml-bom", "/api/v1/reports/{id}/csv"):
        assert path in schema["paths"], path
    assert "202" in schema["paths"]["/api/v1/reports"]["post"]["responses"]
    assert "404" in schema["paths"]["/api/v1/reports/{id}"]["get"]["responses"]
