"""The read-only ledger API: who may read what, filters, proofs that verify, problem documents."""

import base64
import hashlib

import pytest

from audit import merkle
from audit.keys import signing_key
from audit.models import LedgerEntry
from audit.note import open_checkpoint, parse_verifier_key
from audit.services import checkpoint_create
from governance.rules import roles

API = "/api/v1/ledger"


@pytest.fixture
def ledger(append):
    append(6, subject="governance.modelversion:42")
    append(4, kind="test.other")
    return checkpoint_create()


@pytest.fixture
def auditor_client(make_user, api_client):
    api_client.force_authenticate(make_user(roles.AUDITOR))
    return api_client


def test_entries_need_the_view_permission(ledger, make_user, api_client, token_client):
    assert api_client.get(f"{API}/entries").status_code in (401, 403)
    response = token_client.get(f"{API}/entries")  # a pipeline: no audit.view_ledgerentry
    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
    api_client.force_authenticate(make_user(roles.DATA_SCIENTIST))
    assert api_client.get(f"{API}/entries/1").status_code == 403
    for role in (roles.COMPLIANCE_OFFICER, roles.MODEL_RISK_VALIDATOR, roles.AUDITOR):
        api_client.force_authenticate(make_user(role))
        assert api_client.get(f"{API}/entries").status_code == 200, role


def test_entry_list_filters_and_pages(ledger, auditor_client):
    body = auditor_client.get(f"{API}/entries", {"subject": "governance.modelversion:42"}).json()
    assert body["count"] == 6 and {e["subject"] for e in body["results"]} == {"governance.modelversion:42"}
    body = auditor_client.get(f"{API}/entries", {"kind": "test.other"}).json()
    assert [e["seq"] for e in body["results"]] == [7, 8, 9, 10]
    body = auditor_client.get(f"{API}/entries", {"seq_from": 2, "seq_to": 4, "page_size": 2}).json()
    assert body["count"] == 3 and [e["seq"] for e in body["results"]] == [2, 3]
    bad = auditor_client.get(f"{API}/entries", {"seq_from": -1})
    assert bad.status_code == 400 and "seq_from" in bad.json()["errors"]


def test_entry_detail_carries_what_verifies_it(ledger, auditor_client):
    entry = auditor_client.get(f"{API}/entries/3").json()
    data = base64.b64decode(entry["canonical"])
    assert hashlib.sha256(b"\x00" + data).hexdigest() == entry["entry_hash"]
    assert parse_verifier_key(signing_key().verifier_key).verify(data, base64.b64decode(entry["signature"]))
    missing = auditor_client.get(f"{API}/entries/999")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"


def test_pipeline_verifies_an_entry_with_checkpoint_proof_and_keys(ledger, token_client, auditor_client):
    keys = token_client.get(f"{API}/keys").json()
    assert [k["status"] for k in keys] == ["active"]
    verifier = parse_verifier_key(keys[0]["verifier_key"])
    note = token_client.get(f"{API}/checkpoint/note", HTTP_ACCEPT="text/plain")
    assert note.status_code == 200 and note["Content-Type"].startswith("text/plain")
    checkpoint = open_checkpoint(note.content.decode(), [verifier])
    as_json = token_client.get(f"{API}/checkpoint").json()
    assert as_json["note"] == note.content.decode() and as_json["tree_size"] == checkpoint.size == 11
    proof = token_client.get(f"{API}/proofs/inclusion", {"seq": 4}).json()
    leaf = bytes.fromhex(auditor_client.get(f"{API}/entries/4").json()["entry_hash"])
    assert proof["leaf_hash"] == leaf.hex() and proof["root_hash"] == checkpoint.root.hex()
    assert merkle.verify_inclusion(leaf, 4, 11, [bytes.fromhex(p) for p in proof["proof"]], checkpoint.root)


def test_consistency_proof_between_checkpoints(ledger, append, token_client):
    old = token_client.get(f"{API}/checkpoint").json()
    append(5)
    new = checkpoint_create()
    body = token_client.get(f"{API}/proofs/consistency", {"old_size": old["tree_size"]}).json()
    assert body["new_size"] == new.tree_size == LedgerEntry.objects.count() and old["tree_size"] == 11
    assert body["old_root_hash"] == old["root_hash"] and body["root_hash"] == bytes(new.root_hash).hex()
    proof = [bytes.fromhex(p) for p in body["proof"]]
    assert merkle.verify_consistency(11, new.tree_size, bytes.fromhex(old["root_hash"]), new.root_hash, proof)


@pytest.mark.parametrize(
    "path, params",
    [
        ("proofs/inclusion", {"seq": 50}),
        ("proofs/inclusion", {"seq": 1, "tree_size": 500}),
        ("proofs/inclusion", {"seq": "x"}),
        ("proofs/inclusion", {}),
        ("proofs/consistency", {"old_size": 20, "new_size": 11}),
        ("proofs/consistency", {"old_size": 2, "new_size": 9999}),
        ("proofs/consistency", {"old_size": 0}),
    ],
)
def test_bad_proof_requests_are_problem_documents(ledger, token_client, path, params):
    response = token_client.get(f"{API}/{path}", params)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json" and response.json()["status"] == 400


def test_no_checkpoint_yet_is_404(db, token_client):
    for path in ("checkpoint", "checkpoint/note", "proofs/inclusion?seq=0"):
        response = token_client.get(f"{API}/{path}")
        assert response.status_code == 404, path


def test_schema_documents_the_ledger_api(db, auditor_client):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
