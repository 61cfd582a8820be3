"""The erasure request API: intake takes the id once and never answers it; refusals are problem documents."""

import pytest
from rest_framework.test import APIClient

from governance.rules import roles
from governance.storage.subjects import subject_key

PERSON = "applicant-0011"


@pytest.fixture
def dpo_clients(make_user):
    clients = []
    for _ in range(2):
        client = APIClient()
        client.force_authenticate(make_user(roles.DATA_PROTECTION_OFFICER))
        clients.append(client)
    return clients


def test_intake_plan_approve_execute_through_the_api(dpo_clients, german_credit_version,
                                                     django_capture_on_commit_callbacks):
    first, second = dpo_clients
    created = first.post("/api/v1/erasure-requests", {"subject_id": f" {PERSON.upper()}", "ground": "b"}, format="json")
    assert created.status_code == 201, created.content
    ref = created.json()["reference"]
    assert PERSON not in created.content.decode().casefold() and subject_key(PERSON) not in created.content.decode()
    assert "subject_id" not in created.json()

    again = first.post("/api/v1/erasure-requests", {"subject_id": PERSON, "ground": "a"}, format="json")
    assert again.status_code == 409 and ref in again.json()["detail"]
    assert again["Content-Type"] == "application/problem+json"

    assert first.post(f"/api/v1/erasure-requests/{ref}/verify", {"evidence_reference": "ticket 9"},
                      format="json").status_code == 200
    planned = first.post(f"/api/v1/erasure-requests/{ref}/plan")
    assert planned.status_code == 200 and planned.json()["state"] == "planned"
    sha = planned.json()["plan_sha256"]
    own = first.post(f"/api/v1/erasure-requests/{ref}/approve", {"plan_sha256": sha}, format="json")
    assert own.status_code == 403  # the planner cannot approve
    assert second.post(f"/api/v1/erasure-requests/{ref}/approve", {"plan_sha256": "0" * 64},
                       format="json").status_code == 409  # not the plan that was read
    assert second.post(f"/api/v1/erasure-requests/{ref}/approve", {"plan_sha256": sha},
                       format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        executed = second.post(f"/api/v1/erasure-requests/{ref}/execute")
    assert executed.status_code == 200
    done = second.get(f"/api/v1/erasure-requests/{ref}").json()
    assert done["state"] == "completed_live", done["error"]
    assert done["absence_proof"]["index_entries"] == 0
    assert [s["predecessor_id"] for s in done["snapshots"]] == [german_credit_version.pk]


def test_refusals_are_clear_4xx(dpo_clients, make_user, unit):
    first, _ = dpo_clients
    assert first.post("/api/v1/erasure-requests", {"subject_id": "  ", "ground": "b"}, format="json").status_code == 400
    assert first.post("/api/v1/erasure-requests", {"subject_id": "x", "ground": "z"}, format="json").status_code == 400
    assert first.get("/api/v1/erasure-requests/ER-2026-9999").status_code == 404
    scientist = APIClient()
    scientist.force_authenticate(make_user(roles.DATA_SCIENTIST, [unit]))
    assert scientist.get("/api/v1/erasure-requests").status_code == 403
    assert scientist.post("/api/v1/erasure-requests", {"subject_id": "x", "ground": "b"},
                          format="json").status_code == 403
    ref = first.post("/api/v1/erasure-requests", {"subject_id": "y", "ground": "b",
                                                   "received_at": "2020-01-01T00:00:00Z"}, format="json").json()["reference"]
    late = first.post(f"/api/v1/erasure-requests/{ref}/extend", {
        "months": 1, "reason": "Many snapshots to rewrite this month.", "subject_notified_at": "2020-01-02T00:00:00Z",
    }, format="json")
    assert late.status_code == 400 and "first deadline" in late.json()["detail"]
    assert first.post(f"/api/v1/erasure-requests/{ref}/plan").status_code == 409  # identity not verified yet
    overdue = first.get("/api/v1/erasure-requests?overdue=1").json()["results"]
    assert [r["reference"] for r in overdue] == [ref] and overdue[0]["overdue"] is True


def test_legal_holds_and_review_decisions_through_the_api(dpo_clients, make_user, unit, german_credit_version,
                                                          make_credit_model_version, django_capture_on_commit_callbacks):
    from datetime import date, timedelta

    from governance.models import ErasureReview

    first, second = dpo_clients
    make_credit_model_version(unit, dataset_version=german_credit_version)
    hold = first.post("/api/v1/legal-holds", {
        "dataset": german_credit_version.dataset_id, "ground": "b",
        "justification": "EU AI Act Art. 19: the scoring logs are kept six months.",
        "review_on": (date.today() + timedelta(days=90)).isoformat(),
    }, format="json")
    assert hold.status_code == 201, hold.content
    hold_id = hold.json()["id"]
    assert first.post(f"/api/v1/legal-holds/{hold_id}/confirm").status_code == 403  # not the recorder
    confirmed = second.post(f"/api/v1/legal-holds/{hold_id}/confirm")
    assert confirmed.status_code == 200 and confirmed.json()["confirmed_by"]
    released = second.post(f"/api/v1/legal-holds/{hold_id}/release", {"reason": "The retention period has ended."},
                           format="json")
    assert released.status_code == 200 and released.json()["released_at"]

    ref = first.post("/api/v1/erasure-requests", {"subject_id": PERSON, "ground": "b"}, format="json").json()["reference"]
    first.post(f"/api/v1/erasure-requests/{ref}/verify", {"evidence_reference": "t"}, format="json")
    sha = first.post(f"/api/v1/erasure-requests/{ref}/plan").json()["plan_sha256"]
    second.post(f"/api/v1/erasure-requests/{ref}/approve", {"plan_sha256": sha}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        second.post(f"/api/v1/erasure-requests/{ref}/execute")
    review = ErasureReview.objects.get()
    validator = APIClient()
    validator.force_authenticate(make_user(roles.MODEL_RISK_VALIDATOR, [unit]))
    short = validator.post(f"/api/v1/erasure-reviews/{review.pk}/decision", {"decision": "retain",
                                                                               "justification": "ok"}, format="json")
    assert short.status_code == 400
    decided = validator.post(f"/api/v1/erasure-reviews/{review.pk}/decision", {
        "decision": "retrain", "justification": "Retrain without the person's rows next quarter."}, format="json")
    assert decided.status_code == 200 and decided.json()["decision"] == "retrain"
    outsider = APIClient()
    outsider.force_authenticate(make_user(roles.MODEL_RISK_VALIDATOR))
    assert outsider.post(f"/api/v1/erasure-reviews/{review.pk}/decision", {
        "decision": "retire", "justification": "Someone from another unit tries."}, format="json").status_code == 404
