"""The admin ledger browser is read-only for everyone and shows each entry's inclusion."""

import json

import pytest

from audit.services import checkpoint_create
from governance.rules import roles

from .conftest import owner_bypass, raw


@pytest.fixture
def superuser_client(client, make_user):
    client.force_login(make_user(superuser=True))
    return client


def test_ledger_browser_lists_and_filters(append, superuser_client):
    append(3, subject="governance.modelversion:5")
    append(2, kind="test.other")
    page = superuser_client.get("/admin/audit/ledgerentry/", {"kind__exact": "test.other"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "test.other" in text and "governance.modelversion:5" not in text
    page = superuser_client.get("/admin/audit/ledgerentry/", {"q": "governance.modelversion:5"})
    assert page.content.decode().count("governance.modelversion:5") >= 3


def test_nobody_can_add_change_or_delete(append, superuser_client):
    append(1)
    assert superuser_client.get("/admin/audit/ledgerentry/add/").status_code == 403
    assert superuser_client.post("/admin/audit/ledgerentry/1/delete/", {"post": "yes"}).status_code == 403
    page = superuser_client.get("/admin/audit/ledgerentry/1/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert superuser_client.post("/admin/audit/ledgerentry/1/change/", {"actor": "x"}).status_code == 403
    assert superuser_client.get("/admin/audit/checkpoint/add/").status_code == 403


def test_entry_page_shows_inclusion_and_catches_a_tampered_entry(append, superuser_client):
    append(4)
    page = superuser_client.get("/admin/audit/ledgerentry/2/change/").content.decode()
    assert "not yet covered by a checkpoint" in page
    checkpoint_create()
    page = superuser_client.get("/admin/audit/ledgerentry/2/change/").content.decode()
    assert "included in the signed checkpoint of size 5" in page
    with owner_bypass():
        raw("UPDATE audit_ledgerentry SET payload = %s WHERE seq = 2", [json.dumps({"forged": 1})])
    page = superuser_client.get("/admin/audit/ledgerentry/2/change/").content.decode()
    assert "NOT included" in page


def test_auditor_can_browse_pipeline_cannot(append, client, make_user):
    append(1)
    client.force_login(make_user(roles.AUDITOR))
    assert client.get("/admin/audit/ledgerentry/").status_code == 200
    assert client.get("/admin/audit/checkpoint/").status_code == 200
    client.force_login(make_user(roles.DATA_SCIENTIST))
    assert client.get("/admin/audit/ledgerentry/").status_code == 403


def test_an_auditor_searches_part_of_a_subject_and_filters_by_actor_and_time(append, superuser_client):
    append(2, subject="governance.releaserequest:3")
    append(1, subject="governance.releaserequest:4")
    page = superuser_client.get("/admin/audit/ledgerentry/", {"q": "releaserequest:3"}).content.decode()
    assert page.count("governance.releaserequest:3") >= 2 and "governance.releaserequest:4" not in page
    import re

    assert re.search(r"<td class=\"field-created_at nowrap\">\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</td>", page)  # ISO 8601, UTC
    assert superuser_client.get("/admin/audit/ledgerentry/", {"created_at__gte": "2000-01-01 00:00:00+00:00"}).status_code == 200
    filters = superuser_client.get("/admin/audit/ledgerentry/").content.decode()
    assert "By actor" in filters and "By created at" in filters


def test_an_entrys_proof_downloads_and_verifies_against_its_checkpoint(append, superuser_client):
    import base64

    from audit import merkle
    from audit.models import LedgerEntry

    append(5)
    checkpoint = checkpoint_create()
    entry = LedgerEntry.objects.order_by("seq")[2]
    page = superuser_client.get(f"/admin/audit/ledgerentry/{entry.seq}/change/").content.decode()
    assert f'href="/admin/audit/checkpoint/{checkpoint.tree_size}/change/"' in page and 'id="proof-download"' in page
    proof = superuser_client.get(f"/admin/audit/ledgerentry/{entry.seq}/proof.json").json()
    leaf = merkle.leaf_hash(base64.b64decode(proof["entry"]["canonical"]))
    hashes = [bytes.fromhex(h) for h in proof["entry"]["inclusion_proof"]]
    assert merkle.verify_inclusion(leaf, entry.seq, proof["tree_size"], hashes, bytes.fromhex(proof["root_hash"]))
    assert proof["checkpoint"] == checkpoint.note
    note = superuser_client.get(f"/admin/audit/checkpoint/{checkpoint.tree_size}/checkpoint.txt")
    assert note.status_code == 200 and note.content.decode() == checkpoint.note
    assert 'id="checkpoint-download"' in superuser_client.get(
        f"/admin/audit/checkpoint/{checkpoint.tree_size}/change/").content.decode()


def test_an_entry_links_to_the_record_it_is_about(superuser_client, make_user, unit):
    from audit.models import LedgerEntry
    from governance.services.access import business_unit_grant

    business_unit_grant(unit=unit, user=make_user())
    entry = LedgerEntry.objects.get(kind="access.unit_granted")
    page = superuser_client.get(f"/admin/audit/ledgerentry/{entry.seq}/change/").content.decode()
    assert f'<a href="/admin/governance/businessunit/{unit.pk}/change/" id="subject-link">' in page
