"""manage.py erasure: the whole path from the command line, the id read from a file and never printed."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from governance.models import ErasureRequest
from governance.rules import roles
from governance.storage.subjects import subject_key

PERSON = "applicant-0042"


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("erasure", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_request_plan_approve_execute_here_verify(make_user, german_credit_version, tmp_path):
    first = make_user(roles.DATA_PROTECTION_OFFICER).username
    second = make_user(roles.DATA_PROTECTION_OFFICER).username
    id_file = tmp_path / "id.txt"
    id_file.write_text(f"{PERSON.upper()}\n")
    out, _ = run("request", "--subject-id-file", str(id_file), "--ground", "b", "--actor", first, "--json")
    ref = json.loads(out)["reference"]
    run("verify-identity", ref, "--evidence", "ticket 1", "--actor", first)
    planned, _ = run("plan", ref, "--actor", first)
    assert "1 snapshot to redact" in planned
    with pytest.raises(CommandError, match="may not approve"):
        run("approve", ref, "--actor", first)
    run("approve", ref, "--actor", second)
    out, progress = run("execute", ref, "--here", "--actor", second)
    assert "completed_live" in out
    assert "write_successor" in progress and "destroy_predecessor_key" in progress
    verified, _ = run("verify", ref, "--actor", second)
    assert verified.endswith("absent.\n")
    listed, _ = run("list", "--actor", first)
    assert ref in listed
    shown, _ = run("show", ref, "--actor", first, "--json")
    everything = planned + out + progress + verified + listed + shown
    assert PERSON not in everything.casefold() and subject_key(PERSON) not in everything
    assert ErasureRequest.objects.get(reference=ref).state == "completed_live"


def test_a_duplicate_request_is_one_line_naming_the_open_one(make_user):
    officer = make_user(roles.DATA_PROTECTION_OFFICER).username
    out, _ = run("request", "--subject-id", "p-1", "--ground", "a", "--actor", officer, "--json")
    ref = json.loads(out)["reference"]
    with pytest.raises(CommandError, match=ref):
        run("request", "--subject-id", " P-1", "--ground", "a", "--actor", officer)


def test_legal_holds_and_reviews_from_the_command_line(make_user, german_credit_version, make_credit_model_version,
                                                       unit, django_capture_on_commit_callbacks):
    from datetime import date, timedelta

    from governance.models import ErasureReview

    first = make_user(roles.DATA_PROTECTION_OFFICER).username
    second = make_user(roles.DATA_PROTECTION_OFFICER).username
    validator = make_user(roles.MODEL_RISK_VALIDATOR, [unit]).username
    make_credit_model_version(unit, dataset_version=german_credit_version)
    out, _ = run("hold", "--snapshot", str(german_credit_version.pk), "--ground", "e",
                 "--justification", "A pending claim by the applicant about this data.",
                 "--review-on", (date.today() + timedelta(days=60)).isoformat(), "--actor", first)
    hold_id = out.split("#")[1].split()[0]
    with pytest.raises(CommandError, match="may not confirm"):
        run("hold-confirm", hold_id, "--actor", first)
    run("hold-confirm", hold_id, "--actor", second)
    out, _ = run("request", "--subject-id", PERSON, "--ground", "b", "--actor", first, "--json")
    ref = json.loads(out)["reference"]
    run("verify-identity", ref, "--evidence", "ticket 2", "--actor", first)
    planned, _ = run("plan", ref, "--actor", first)
    assert "kept under legal hold" in planned
    run("approve", ref, "--actor", second)
    out, _ = run("execute", ref, "--here", "--actor", second)
    assert "partially_completed" in out
    review = ErasureReview.objects.get()
    with pytest.raises(CommandError, match="may not"):
        run("review-decide", str(review.pk), "--decision", "retain", "--justification", "x" * 30, "--actor", first)
    run("review-decide", str(review.pk), "--decision", "retire",
        "--justification", "Retired: trained on data of a person who asked to be erased.", "--actor", validator)
    review.refresh_from_db()
    assert review.decision == "retire"
