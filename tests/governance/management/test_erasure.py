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
