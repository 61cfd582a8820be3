"""The write path: appends, append-only at the ORM and database, keys, checkpoints."""

import hashlib

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, transaction

from audit import merkle, tree
from audit.canonical import canonical_json
from audit.chain import KEY_REGISTERED, KEY_ROTATED
from audit.keys import generate_key_file, load_key_file, signing_key
from audit.models import AppendOnlyError, Checkpoint, LedgerEntry, LedgerHead, TreeNode
from audit.note import open_checkpoint, parse_verifier_key
from audit.services import (
    CheckpointConflict,
    LedgerKeyMismatch,
    checkpoint_create,
    ledger_append,
    ledger_key_revoke,
    ledger_key_rotate,
)

from .conftest import owner_bypass, raw


def test_first_append_registers_the_key_then_entries_chain(append):
    entries = append(3)
    genesis = LedgerEntry.objects.get(seq=0)
    key = signing_key()
    assert genesis.kind == KEY_REGISTERED and genesis.payload["verifier_key"] == key.verifier_key
    assert [e.seq for e in entries] == [1, 2, 3]
    prev = bytes(genesis.entry_hash)
    for e in entries:
        stored = LedgerEntry.objects.get(seq=e.seq)
        data = canonical_json(stored.canonical_content())
        assert bytes(stored.entry_hash) == hashlib.sha256(b"\x00" + data).digest()
        assert bytes(stored.prev_hash) == prev
        parse_verifier_key(key.verifier_key).verify(data, bytes(stored.signature))
        assert stored.key_id == key.key_id
        prev = bytes(stored.entry_hash)
    head = LedgerHead.objects.get()
    assert head.size == 4 and bytes(head.last_hash) == prev
    leaves = [bytes(h) for h in LedgerEntry.objects.order_by("seq").values_list("entry_hash", flat=True)]
    assert merkle.frontier_root(head.frontier_hashes()) == merkle.root(leaves)


def test_append_validates_its_arguments(db):
    for kwargs in (
        {"kind": "Nodots", "subject": "governance.model:1"},
        {"kind": "made.up", "subject": "governance.model:1"},  # well-formed, but no app declared it
        {"kind": "test.recorded", "subject": "no subject"},
        {"kind": KEY_ROTATED, "subject": "audit.key:1"},
    ):
        with pytest.raises(ValueError):
            ledger_append(payload={}, actor=None, **kwargs)
    with pytest.raises(ValueError):
        ledger_append(kind="test.recorded", subject="governance.model:1", payload={"x": float("nan")}, actor=None)
    assert LedgerEntry.objects.count() == 0


def test_a_failed_append_dooms_the_callers_change(append):
    from django.contrib.auth.models import Group

    append(1)
    with pytest.raises(LedgerKeyMismatch), transaction.atomic():
        Group.objects.create(name="changed without evidence")
        LedgerHead.objects.filter(id=1).update(key_id="ffffffff")  # the ledger now refuses this key
        ledger_append(kind="test.recorded", subject="governance.model:1", payload={}, actor=None)
    assert not Group.objects.filter(name="changed without evidence").exists()


def test_failed_transaction_leaves_no_entry_and_no_gap(append):
    append(2)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            ledger_append(kind="test.recorded", subject="governance.model:9", payload={}, actor=None)
            raise RuntimeError("the governed change failed")
    after = ledger_append(kind="test.recorded", subject="governance.model:9", payload={}, actor=None)
    assert after.seq == 3
    assert list(LedgerEntry.objects.values_list("seq", flat=True)) == [0, 1, 2, 3]
    assert LedgerHead.objects.get().size == 4


def test_orm_refuses_updates_and_deletes(append):
    (entry,) = append(1)
    entry.payload = {"changed": True}
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    qs = LedgerEntry.objects.all()
    with pytest.raises(AppendOnlyError):
        qs.update(actor="x")
    with pytest.raises(AppendOnlyError):
        qs.delete()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.bulk_update([entry], ["actor"])
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.bulk_create([LedgerEntry(seq=99)])
    with pytest.raises(AppendOnlyError):
        Checkpoint.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        TreeNode.objects.all().update(hash=b"")
    assert LedgerEntry.objects.get(seq=1).payload == {"i": 0, "artifact_sha256": f"{0:064x}"}


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_ledgerentry SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_ledgerentry WHERE seq = 1",
        "UPDATE audit_treenode SET hash = hash",
        "DELETE FROM audit_treenode",
        "DELETE FROM audit_checkpoint",
    ],
)
def test_database_refuses_raw_update_and_delete(append, sql):
    append(3)
    checkpoint_create()
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            raw(sql)
    assert LedgerEntry.objects.get(seq=1).actor == "tester"
    assert LedgerEntry.objects.count() == 4 and TreeNode.objects.count() == 3 and Checkpoint.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE exists only on PostgreSQL")
@pytest.mark.postgres
@pytest.mark.parametrize("table", ["audit_ledgerentry", "audit_treenode", "audit_checkpoint"])
def test_postgres_refuses_truncate(append, table):
    append(2)
    checkpoint_create()
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            raw(f"TRUNCATE {table} CASCADE")
    assert LedgerEntry.objects.count() == 3


def test_owner_bypass_restores_the_triggers(append):
    append(1)
    with owner_bypass():
        raw("UPDATE audit_ledgerentry SET actor = 'owner' WHERE seq = 1")
    with pytest.raises(DatabaseError):
        with transaction.atomic():
            raw("UPDATE audit_ledgerentry SET actor = 'again' WHERE seq = 1")


def test_a_foreign_key_file_cannot_append(append, tmp_path, settings):
    append(1)
    other = tmp_path / "other.key"
    generate_key_file(other)
    settings.CUSTOS_SIGNING_KEY_FILE = str(other)
    with pytest.raises(LedgerKeyMismatch, match="not the ledger's active signing key"):
        ledger_append(kind="test.recorded", subject="governance.model:1", payload={}, actor=None)


def test_rotation_hands_over_and_revocation_is_recorded(append, tmp_path, settings):
    append(2)
    old = signing_key()
    new_path = tmp_path / "new.key"
    generate_key_file(new_path)
    new = load_key_file(new_path, old.name)
    rotation = ledger_key_rotate(new_key=new, actor="admin")
    assert rotation.key_id == old.key_id  # signed by the old key, naming the new one
    assert rotation.payload == {"old_key_id": old.key_id, "new_key_id": new.key_id, "new_verifier_key": new.verifier_key}
    with pytest.raises(LedgerKeyMismatch), transaction.atomic():  # the old key may no longer sign
        append(1)
    settings.CUSTOS_SIGNING_KEY_FILE = str(new_path)
    (later,) = append(1)
    assert later.key_id == new.key_id
    with pytest.raises(ValueError, match="active"):
        ledger_key_revoke(key_id=new.key_id, reason="x")
    with pytest.raises(ValueError, match="not a key"):
        ledger_key_revoke(key_id="00000000", reason="x")
    revoked = ledger_key_revoke(key_id=old.key_id, reason="laptop lost", actor="admin")
    assert revoked.payload == {"key_id": old.key_id, "reason": "laptop lost"}
    with pytest.raises(ValueError, match="already"):
        ledger_key_revoke(key_id=old.key_id, reason="again")
    with pytest.raises(ValueError, match="used by this ledger"):
        ledger_key_rotate(new_key=old, actor=None)


def test_checkpoint_is_a_signed_note_exported_outside_the_database(append, settings):
    append(5)
    checkpoint = checkpoint_create()
    key = signing_key()
    body = open_checkpoint(checkpoint.note, [parse_verifier_key(key.verifier_key)], origin=settings.CUSTOS_LOG_ORIGIN)
    assert body.size == 6 == checkpoint.tree_size
    assert body.root == bytes(checkpoint.root_hash) == tree.root_at(6)
    lines = checkpoint.note.split("\n")
    assert lines[0] == settings.CUSTOS_LOG_ORIGIN and lines[1] == "6" and lines[4] == ""
    # the signing time is signed with the root (an extension line), equal to the row's
    assert lines[3] == "time " + checkpoint.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") and body.time == lines[3][5:]
    assert lines[5].startswith(f"\u2014 {key.name} ")
    from pathlib import Path

    exported = Path(settings.CUSTOS_CHECKPOINT_DIR)
    assert (exported / "checkpoint-000000000006.txt").read_text() == checkpoint.note
    assert (exported / "latest").read_text() == checkpoint.note
    assert checkpoint_create().pk == checkpoint.pk  # nothing new: the same checkpoint
    append(1)
    assert checkpoint_create().tree_size == 7


def test_checkpoint_refuses_a_tree_inconsistent_with_an_earlier_one(append):
    append(4)
    checkpoint_create()
    append(2)
    forged = b"\x07" * 32  # the owner rewrites the first four entries' subtree behind Custos's back
    with owner_bypass():
        raw("UPDATE audit_treenode SET hash = %s WHERE id = %s", [forged, TreeNode.node_id(2, 0)])
        head = LedgerHead.objects.get()
        frontier = head.frontier_hashes()
        assert len(frontier) == 3  # size 7 = subtrees of 4, 2 and 1 entries
        LedgerHead.objects.filter(id=1).update(frontier=forged + b"".join(frontier[1:]))
    with pytest.raises(CheckpointConflict, match="not consistent"):
        checkpoint_create()
    assert Checkpoint.objects.count() == 1


def test_proofs_from_stored_nodes_match_the_in_memory_tree(append):
    append(40)
    leaves = [bytes(h) for h in LedgerEntry.objects.order_by("seq").values_list("entry_hash", flat=True)]
    for size in (1, 2, 7, 16, 33, 41):
        assert tree.root_at(size) == merkle.root(leaves[:size])
        for seq in {0, size // 2, size - 1}:
            assert tree.inclusion_proof(seq=seq, tree_size=size) == merkle.inclusion_proof(leaves[:size], seq)
        for old in {1, size // 2 or 1, size}:
            assert tree.consistency_proof(old_size=old, new_size=size) == merkle.consistency_proof(leaves[:size], old)
        # The batched proofs of a bundle are the same, in any chunking.
        seqs = list(range(size))
        expected = {seq: merkle.inclusion_proof(leaves[:size], seq) for seq in seqs}
        assert tree.inclusion_proofs(seqs=seqs, tree_size=size) == expected
        assert tree.inclusion_proofs(seqs=seqs, tree_size=size, chunk=3) == expected
    with pytest.raises(tree.ProofError):
        tree.inclusion_proof(seq=41, tree_size=41)
    with pytest.raises(tree.ProofError):
        tree.inclusion_proofs(seqs=[3, 41], tree_size=41)
    with pytest.raises(tree.ProofError):
        tree.consistency_proof(old_size=5, new_size=42)


def test_missing_key_is_a_clear_configuration_error(db, settings, tmp_path):
    settings.CUSTOS_SIGNING_KEY_FILE = str(tmp_path / "absent.key")
    with pytest.raises(ImproperlyConfigured, match="does not exist"):
        ledger_append(kind="test.recorded", subject="governance.model:1", payload={}, actor=None)


def test_every_append_only_trigger_survives_the_migrations(db):
    """SQLite rebuilds a table to alter it, dropping its triggers: the migrations must restore them."""
    if connection.vendor == "postgresql":
        names = {r[0] for r in raw("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O'")}
        expected = {f"{t}_{s}" for t in ("audit_ledgerentry", "audit_treenode", "audit_checkpoint") for s in ("append_only", "no_truncate")}
    else:
        names = {r[0] for r in raw("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        expected = {f"{t}_{s}" for t in ("audit_ledgerentry", "audit_treenode", "audit_checkpoint") for s in ("no_update", "no_delete")}
    assert expected <= names
