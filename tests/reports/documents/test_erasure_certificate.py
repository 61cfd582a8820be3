"""The erasure certificate of a completed request on real encrypted German-credit snapshots (CSV
and Parquet): read back with pypdf, its hashes the stored ones, no trace of the person, its
evidence verified offline, its bytes re-derived from the checkpoint."""

import base64
from datetime import date, timedelta
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.http import Http404
from django.test import TestCase
from django.urls import reverse

from audit import pdf as reader
from audit.models import LedgerEntry
from audit.selectors import key_list
from audit.services import checkpoint_create
from audit.verifier import load_verifier_keys, verify_bundle, verify_report_file
from config.errors import Conflict
from governance.models import ErasureSnapshot
from governance.rules import erasure as rules
from governance.rules import roles
from governance.services import erasure as service
from governance.storage.subjects import subject_key
from reports.models import Report
from reports.selectors.reports import reports_for
from reports.services.reports import report_content, report_request, report_rerender
from tests.governance.services.test_erasure import PERSON, _approved, _execute, officers, parquet_version  # noqa: F401  fixtures reused
from tests.reports.api.test_reports import client_for
from tests.reports.services.test_reports import text_of
from tests.reports.specimen import rasterise

KIND = "erasure-certificate"


def iso_of(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def completed(officers, parquet_version, make_credit_model_version, unit,  # noqa: F811  fixtures reused
              django_capture_on_commit_callbacks):
    """A request completed on the CSV and Parquet snapshots, the credit model trained on them under review."""
    _, csv = parquet_version
    make_credit_model_version(unit, dataset_version=csv)
    request = _execute(_approved(officers), officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.COMPLETED_LIVE, request.error
    return request


def test_the_certificate_shows_the_stored_hashes_carries_verifiable_evidence_and_never_the_person(
    completed, officers, issue, tmp_path,  # noqa: F811  fixtures reused
):
    report = issue(KIND, completed.ledger_subject, actor=officers[0])
    assert report.state == Report.State.ISSUED, report.error
    data = report_content(report)
    rasterise(data, "erasure-certificate", pages=(1, 3))
    text = text_of(data)
    flat = "".join(text.split())

    assert completed.reference in text
    snapshots = list(ErasureSnapshot.objects.filter(request=completed).select_related("predecessor", "successor"))
    assert len(snapshots) == 2
    for es in snapshots:
        assert es.predecessor.sha256 in flat and es.successor.sha256 in flat
        assert es.successor.sha256 == next(s["successor_sha256"] for s in completed.absence_proof["snapshots"]
                                           if s["predecessor_id"] == es.predecessor_id)
    assert "Deadline met" in text and "completed live" in text and "credit-scoring 1.0 open" in text
    destroyed = LedgerEntry.objects.filter(kind="registry.snapshot_key_destroyed",
                                           subject__in=[es.predecessor.ledger_subject for es in snapshots])
    assert destroyed.count() == 2
    for e in destroyed:
        assert f"{iso_of(e.created_at)} {e.seq}" in text

    # Neither the person's id nor its keyed hash: not in the text, the attachments or the bytes.
    carried = {f.name: f for f in reader.embedded_files(data)}
    assert set(carried) == {"evidence-bundle.json"}
    key = subject_key(PERSON)
    for needle in (PERSON, PERSON.upper(), key):
        assert needle not in text and needle.encode() not in data
        assert all(needle.encode() not in f.content for f in carried.values())
    assert reader.pdfa3b_problems(data) == []

    # The bundle holds the request's entries and the key destructions, and verifies offline.
    bundle = json.loads(carried["evidence-bundle.json"].content)
    verify_bundle(bundle, load_verifier_keys([k["verifier_key"] for k in key_list()]))
    seqs = {item["seq"] for item in bundle["entries"]}
    completed_entry = LedgerEntry.objects.get(kind="erasure.completed", subject=completed.ledger_subject)
    assert {completed_entry.seq, *destroyed.values_list("seq", flat=True)} <= seqs
    # The keyed hash is in no signed entry the bundle carries either (base64 of canonical bytes).
    assert all(key.encode() not in base64.b64decode(item["canonical"]) for item in bundle["entries"])
    path = tmp_path / "certificate.pdf"
    path.write_bytes(data)
    keys = load_verifier_keys([k["verifier_key"] for k in key_list()])
    assert verify_report_file(path, keys, quiet=True) == 0

    assert report_rerender(report_id=report.pk)["identical"] is True


def test_only_erasure_readers_issue_and_read_certificates(completed, officers, make_user, unit, issue):  # noqa: F811
    auditor = make_user(roles.AUDITOR)
    report = issue(KIND, completed.ledger_subject, actor=auditor)
    assert reports_for(officers[0]).filter(pk=report.pk).exists()
    for other in (make_user(roles.HEAD_OF_MODEL_RISK), make_user(roles.COMPLIANCE_OFFICER, [unit])):
        assert not reports_for(other).filter(pk=report.pk).exists()
        with pytest.raises(Http404):
            report_request(kind=KIND, subject=completed.ledger_subject, actor=other, dispatch=False)
    with pytest.raises(ValidationError):
        report_request(kind=KIND, subject="governance.modelversion:1", actor=auditor, dispatch=False)


def test_a_request_not_completed_gets_no_certificate(officers):  # noqa: F811
    open_request = service.erasure_request_record(subject_id="someone", ground="a", actor=officers[0])
    with pytest.raises(Conflict):
        report_request(kind=KIND, subject=open_request.ledger_subject, actor=officers[0], dispatch=False)


def test_the_officer_issues_it_from_the_request_page_after_confirmation(completed, officers, make_user, unit,  # noqa: F811
                                                                        client):
    client.force_login(officers[0])
    page = client.get(reverse("admin:governance_erasurerequest_detail", args=[completed.reference])).content.decode()
    issue = reverse("admin:reports_report_issue", args=[KIND, completed.pk])
    assert f'href="{issue}">Certificate</a>' in page
    confirm = client.get(issue)
    assert confirm.status_code == 200 and b"Yes, issue it" in confirm.content and not Report.objects.exists()
    preview = reverse("admin:reports_report_preview", args=[KIND, completed.pk])
    assert client.get(preview).status_code == 404  # no checkpoint covers the completion yet
    checkpoint_create()  # the periodic checkpoint, as the worker signs it
    preview = client.get(preview)
    assert preview.status_code == 200 and completed.reference.encode() in preview.content
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(issue)
    report = Report.objects.get()
    assert response.status_code == 302 and report.state == Report.State.ISSUED, report.error
    download = client.get(reverse("admin:reports_report_download", args=[report.pk]))
    assert download.status_code == 200 and download.content == report_content(report)
    client.force_login(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    assert client.get(issue).status_code == 404
    assert client.get(reverse("admin:reports_report_change", args=[report.pk])).status_code in (302, 404)


def test_the_command_and_the_api_issue_it(completed, officers, tmp_path):  # noqa: F811
    out = tmp_path / "certificate.pdf"
    call_command("reports", "render", KIND, completed.ledger_subject, "--out", str(out),
                 "--actor", officers[0].username)
    report = Report.objects.get(kind=KIND)
    assert out.read_bytes() == report_content(report)
    api = client_for(officers[1])
    with TestCase.captureOnCommitCallbacks(execute=True):
        answer = api.post("/api/v1/reports", {"kind": KIND, "subject": completed.ledger_subject}, format="json")
    assert answer.status_code == 202, answer.content
    assert api.get(f"/api/v1/reports/{answer.json()['id']}").json()["state"] == "issued"


def test_a_partial_erasure_names_its_legal_hold_and_the_kept_snapshot(
    officers, german_credit_version, make_german_credit_version, unit, django_capture_on_commit_callbacks, issue,  # noqa: F811
):
    other = make_german_credit_version(unit, version="v2")
    first, second = officers
    hold = service.legal_hold_record(
        ground="b", justification="EU AI Act Art. 19 log retention of the scoring system.",
        review_on=date.today() + timedelta(days=30), dataset_version=german_credit_version, actor=first,
    )
    service.legal_hold_confirm(hold=hold, actor=second)
    request = _execute(_approved(officers), second, django_capture_on_commit_callbacks)
    assert request.state == rules.State.PARTIALLY_COMPLETED, request.error
    report = issue(KIND, request.ledger_subject, actor=first)
    text = " ".join(text_of(report_content(report)).split())
    assert "partially completed" in text and "kept under legal hold" in text
    assert f"{hold.pk} Art. 17(3) (b)" in text and "EU AI Act Art. 19 log retention" in text
    assert german_credit_version.sha256 in text.replace(" ", "") and other.sha256 in text.replace(" ", "")
    assert f"german-credit@{german_credit_version.version} kept under legal hold" in text
    assert report_rerender(report_id=report.pk)["identical"] is True
