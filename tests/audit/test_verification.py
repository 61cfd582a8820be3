"""`manage.py ledger verify` catches every tamper a database owner can make behind the triggers."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from audit import merkle
from audit.canonical import canonical_json
from audit.chain import entry_content
from audit.keys import generate_key_file, load_key_file, signing_key
from audit.models import LedgerEntry, LedgerHead
from audit.services import CheckpointConflict, checkpoint_create, ledger_append

from .conftest import owner_bypass, raw


@pytest.fixture
def ledger(append):
    """A ledger of 10 entries (genesis + 9) with a stored checkpoint at 10, as exported."""
    append(9)
    checkpoint = checkpoint_create()
    return checkpoint


def exported(settings, size):
    return Path(settings.CUSTOS_CHECKPOINT_DIR) / f"checkpoint-{size:012d}.txt"


def test_an_untouched_ledger_verifies(ledger, verify, settings, append):
    append(3)
    checkpoint_create()
    ok, out = verify(exported(settings, 10))
    assert ok, out
    assert "OK: 13 entries" in out and "2 stored and 1 external" in out


def test_progress_is_shown(ledger, capsys):
    call_command("ledger", "verify")
    assert "verified 10/10 entries" in capsys.readouterr().err


def test_edited_payload_is_caught(ledger, verify):
    with owner_bypass():
        raw("UPDATE audit_ledgerentry SET payload = %s WHERE seq = 4", [json.dumps({"i": 999})])
    ok, message = verify()
    assert not ok
    assert "entry 4:" in message and "does not match its hash" in message


def test_deleted_entry_is_caught(ledger, verify):
    with owner_bypass():
        raw("DELETE FROM audit_ledgerentry WHERE seq = 6")
    ok, message = verify()
    assert not ok and "entry 6:" in message and "missing" in message


def test_swapped_entries_are_caught(ledger, verify):
    with owner_bypass():
        raw("UPDATE audit_ledgerentry SET seq = -1 WHERE seq = 3")
        raw("UPDATE audit_ledgerentry SET seq = 3 WHERE seq = 4")
        raw("UPDATE audit_ledgerentry SET seq = 4 WHERE seq = -1")
    ok, message = verify()
    assert not ok and "entry 3:" in message


def test_replaced_signature_is_caught(ledger, verify):
    other = bytes(LedgerEntry.objects.get(seq=2).signature)
    with owner_bypass():
        raw("UPDATE audit_ledgerentry SET signature = %s WHERE seq = 5", [other])
    ok, message = verify()
    assert not ok and "entry 5:" in message and "signature does not verify" in message


def _forge(entry, key, payload):
    """Re-sign ENTRY with KEY over PAYLOAD, recomputing its hash: what an owner with KEY can do."""
    content = entry_content(
        seq=entry.seq,
        created_at=entry.created_at,
        kind=entry.kind,
        subject=entry.subject,
        actor=entry.actor,
        payload=payload,
        prev_hash=bytes(entry.prev_hash),
        key_id=key.key_id,
    )
    data = canonical_json(content)
    return merkle.leaf_hash(data), key.sign(data)


def test_entry_resigned_with_an_unknown_key_is_caught(ledger, verify, tmp_path):
    path = tmp_path / "mallory.key"
    generate_key_file(path)
    mallory = load_key_file(path, signing_key().name)
    last = LedgerEntry.objects.get(seq=9)
    entry_hash, signature = _forge(last, mallory, {"i": 0, "approved": True})
    with owner_bypass():
        raw(
            "UPDATE audit_ledgerentry SET payload = %s, entry_hash = %s, signature = %s, key_id = %s WHERE seq = 9",
            [json.dumps({"i": 0, "approved": True}), entry_hash, signature, mallory.key_id],
        )
    ok, message = verify()
    assert not ok and "entry 9:" in message and f"unknown key {mallory.key_id}" in message


def test_entry_resigned_with_the_real_key_breaks_the_chain(ledger, verify):
    entry = LedgerEntry.objects.get(seq=5)
    entry_hash, signature = _forge(entry, signing_key(), {"i": 4, "approved": True})
    with owner_bypass():
        raw(
            "UPDATE audit_ledgerentry SET payload = %s, entry_hash = %s, signature = %s WHERE seq = 5",
            [json.dumps({"i": 4, "approved": True}), entry_hash, signature],
        )
    ok, message = verify()
    assert not ok and "entry 6:" in message and "chain broken" in message


def _truncate_cleanly(keep):
    """Drop every entry from KEEP on, and rewrite the head, nodes and checkpoints to match."""
    leaves = [bytes(h) for h in LedgerEntry.objects.filter(seq__lt=keep).order_by("seq").values_list("entry_hash", flat=True)]
    frontier = []
    for i, leaf in enumerate(leaves):
        frontier, _ = merkle.frontier_append(frontier, i, leaf)
    with owner_bypass():
        raw("DELETE FROM audit_ledgerentry WHERE seq >= %s", [keep])
        raw("DELETE FROM audit_checkpoint")
        raw("DELETE FROM audit_treenode")  # rebuilt below for the kept prefix
        from audit.models import TreeNode

        nodes, f = [], []
        for i, leaf in enumerate(leaves):
            f, done = merkle.frontier_append(f, i, leaf)
            nodes += [TreeNode(id=TreeNode.node_id(lv, ix), hash=h) for lv, ix, h in done if lv > 0]
        TreeNode.objects.bulk_create(nodes)
        LedgerHead.objects.filter(id=1).update(size=keep, last_hash=leaves[-1], frontier=b"".join(frontier))


def test_truncated_tail_is_caught_against_an_exported_checkpoint(ledger, verify, settings):
    _truncate_cleanly(7)
    ok, out = verify()
    assert ok, out  # a clean truncation leaves a self-consistent database: hence external anchors
    ok, message = verify(exported(settings, 10))
    assert not ok
    assert "entry 7:" in message and "commits to 10 entries" in message and "7..9 were removed" in message


def test_truncation_is_caught_by_stored_checkpoints_when_the_owner_leaves_them(ledger, verify):
    with owner_bypass():
        raw("DELETE FROM audit_ledgerentry WHERE seq >= 8")
    ok, message = verify()
    assert not ok and "entry 8:" in message


def test_rewritten_history_resigned_with_the_real_key_is_caught_against_an_exported_checkpoint(
    ledger, verify, settings, tmp_path
):
    kept = tmp_path / "auditor-copy.txt"  # the auditor's copy of the published checkpoint
    kept.write_text(exported(settings, 10).read_text())
    with owner_bypass():  # the owner, holding the real key, replays a doctored history
        raw("DELETE FROM audit_ledgerentry")
        raw("DELETE FROM audit_treenode")
        raw("DELETE FROM audit_checkpoint")
        LedgerHead.objects.filter(id=1).update(size=0, last_hash=bytes(32), frontier=b"", key_id="")
    for i in range(9):
        ledger_append(kind="test.recorded", subject=f"governance.modelversion:{i % 3}", payload={"i": i, "ok": True}, actor="tester")
    ok, out = verify()
    assert ok, out  # internally consistent: the real key signed it all
    ok, message = verify(kept)
    assert not ok and "history was rewritten" in message and "0..9" in message
    # and Custos itself refuses to sign a checkpoint that contradicts the exported one
    with pytest.raises(CheckpointConflict, match="not consistent"):
        checkpoint_create()


def test_checkpoint_refuses_to_sign_after_a_truncation_the_export_saw(ledger):
    _truncate_cleanly(7)
    with pytest.raises(CheckpointConflict, match="entries were removed"):
        checkpoint_create()


def test_external_checkpoint_signed_by_another_key_is_rejected(ledger, verify, tmp_path):
    from audit.note import checkpoint_text, sign_note

    path = tmp_path / "other.key"
    generate_key_file(path)
    other = load_key_file(path, signing_key().name)
    forged = tmp_path / "forged.txt"
    forged.write_text(sign_note(checkpoint_text(other.name, 10, bytes(32)), other.name, other.private_key))
    ok, message = verify(forged)
    assert not ok and "does not verify" in message


def test_wholly_reforged_ledger_is_caught_by_the_configured_key(ledger, verify, settings, tmp_path):
    path = tmp_path / "mallory.key"
    generate_key_file(path)
    real = settings.CUSTOS_SIGNING_KEY_FILE
    with owner_bypass():
        raw("DELETE FROM audit_ledgerentry")
        raw("DELETE FROM audit_treenode")
        raw("DELETE FROM audit_checkpoint")
        LedgerHead.objects.filter(id=1).update(size=0, last_hash=bytes(32), frontier=b"", key_id="")
    settings.CUSTOS_SIGNING_KEY_FILE = str(path)
    ledger_append(kind="test.recorded", subject="governance.model:1", payload={}, actor="mallory")
    settings.CUSTOS_SIGNING_KEY_FILE = real
    ok, message = verify()
    assert not ok and "not the ledger's active key" in message


def test_rotation_keeps_old_entries_verifiable(own_key, ledger, verify, settings):
    call_command("ledger", "keys", "rotate")
    ledger_append(kind="test.recorded", subject="governance.model:1", payload={}, actor=None)
    ok, out = verify(exported(settings, 10))
    assert ok, out
    assert len(out.split("keys ")[1].split(",")) == 2


def test_head_row_tampering_is_caught(ledger, verify):
    with owner_bypass():
        LedgerHead.objects.filter(id=1).update(size=9)
    ok, message = verify()
    assert not ok and "head row" in message


def test_stored_checkpoint_with_a_forged_root_is_caught(ledger, verify):
    with owner_bypass():
        raw("UPDATE audit_checkpoint SET root_hash = %s", [bytes(32)])
    ok, message = verify()
    assert not ok and "disagrees with its signed note" in message


def test_verify_runs_on_an_empty_ledger(db, verify):
    ok, out = verify()
    assert ok and "OK: 0 entries" in out


def test_timestamps_are_utc_microseconds(append):
    (entry,) = append(1)
    assert entry.created_at.tzinfo is not None
    assert abs((datetime.now(UTC) - entry.created_at).total_seconds()) < 60
    assert LedgerEntry.objects.get(seq=1).canonical_content()["time"].endswith("Z")
