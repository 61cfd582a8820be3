"""The Data Protection Officer's admin: intake that never redisplays the id, plan, confirmed approval and execution."""

import re

from django.test import Client

from governance.models import ErasureRequest
from governance.rules import roles
from governance.storage.subjects import subject_key

PERSON = "applicant-0100"


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_officer_runs_a_request_from_intake_to_completion(make_user, german_credit_version,
                                                              django_capture_on_commit_callbacks):
    first = _client(make_user(roles.DATA_PROTECTION_OFFICER))
    second = _client(make_user(roles.DATA_PROTECTION_OFFICER))
    pages = []
    form = first.get("/admin/governance/erasurerequest/add/")
    assert form.status_code == 200 and 'type="password"' in form.content.decode()
    created = first.post("/admin/governance/erasurerequest/add/", {"subject_id": PERSON, "ground": "b"}, follow=True)
    pages.append(created)
    erasure = ErasureRequest.objects.get()
    detail = f"/admin/governance/erasurerequest/{erasure.reference}/detail/"
    pages.append(first.post(detail, {"action": "verify", "evidence_reference": "ticket 12"}, follow=True))
    pages.append(first.post(detail, {"action": "plan"}, follow=True))
    assert "1 snapshot to redact" in pages[-1].content.decode()
    erasure.refresh_from_db()
    approve = f"/admin/governance/erasurerequest/{erasure.reference}/confirm/approve/"
    confirm_page = second.get(approve)
    assert "destroys the old data key" in confirm_page.content.decode()
    # Without ticking the confirmation nothing happens.
    second.post(approve, {"plan_sha256": erasure.plan_sha256})
    erasure.refresh_from_db()
    assert erasure.state == "planned"
    refused = first.post(approve, {"plan_sha256": erasure.plan_sha256, "confirm": "on"}, follow=True)
    assert "may not approve" in refused.content.decode()
    second.post(approve, {"plan_sha256": erasure.plan_sha256, "confirm": "on"})
    erasure.refresh_from_db()
    assert erasure.state == "plan_approved"
    with django_capture_on_commit_callbacks(execute=True):
        second.post(f"/admin/governance/erasurerequest/{erasure.reference}/confirm/execute/",
                    {"plan_sha256": erasure.plan_sha256, "confirm": "on"})
    erasure.refresh_from_db()
    assert erasure.state == "completed_live", erasure.error
    pages.append(second.get(detail))
    pages.append(second.get("/admin/governance/erasurerequest/"))
    assert erasure.reference in pages[-1].content.decode()
    for page in pages + [form, confirm_page]:
        text = page.content.decode()
        assert PERSON not in text.casefold() and subject_key(PERSON) not in text
        assert not re.search(r'value="applicant', text)


def test_others_cannot_open_the_erasure_pages(make_user, unit):
    scientist = _client(make_user(roles.DATA_SCIENTIST, [unit]))
    assert scientist.get("/admin/governance/erasurerequest/add/").status_code == 403
    assert scientist.get("/admin/governance/erasurerequest/ER-2026-0001/detail/").status_code == 403


def test_the_admin_index_lists_requests_near_their_deadline(make_user):
    from datetime import timedelta

    from django.utils import timezone

    from governance.services.erasure import erasure_request_record

    officer = make_user(roles.DATA_PROTECTION_OFFICER)
    late = erasure_request_record(subject_id="p-late", ground="b", received_at=timezone.now() - timedelta(days=40),
                                  actor=officer)
    fresh = erasure_request_record(subject_id="p-fresh", ground="b", actor=officer)
    page = _client(officer).get("/admin/").content.decode()
    assert late.reference in page and "overdue" in page and fresh.reference not in page


def test_a_validator_decides_the_review_in_the_admin(make_user, unit, german_credit_version,
                                                     make_credit_model_version, django_capture_on_commit_callbacks):
    from governance.models import ErasureReview
    from governance.services import erasure

    make_credit_model_version(unit, dataset_version=german_credit_version)
    first, second = make_user(roles.DATA_PROTECTION_OFFICER), make_user(roles.DATA_PROTECTION_OFFICER)
    r = erasure.erasure_request_record(subject_id=PERSON, ground="b", actor=first)
    erasure.erasure_identity_verify(request=r, evidence_reference="t", actor=first)
    erasure.erasure_plan(request=r, actor=first)
    erasure.erasure_plan_approve(request=r, actor=second)
    with django_capture_on_commit_callbacks(execute=True):
        erasure.erasure_execute(request=r, actor=second)
    review = ErasureReview.objects.get()
    validator = _client(make_user(roles.MODEL_RISK_VALIDATOR, [unit]))
    assert str(review.pk) in validator.get("/admin/governance/erasurereview/").content.decode()
    page = validator.get(f"/admin/governance/erasurereview/{review.pk}/decide/").content.decode()
    assert "Record the decision" in page and PERSON not in page
    validator.post(f"/admin/governance/erasurereview/{review.pk}/decide/",
                   {"decision": "retain", "justification": "Anonymity assessment AA-7 attached to the model card."})
    review.refresh_from_db()
    assert review.decision == "retain"
    outsider = _client(make_user(roles.MODEL_RISK_VALIDATOR))
    assert outsider.get(f"/admin/governance/erasurereview/{review.pk}/decide/").status_code == 404
