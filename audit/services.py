"""The one write path to the ledger, and the writes that operate it (keys, checkpoints)."""

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from . import merkle, tree
from .canonical import canonical_json
from .chain import KEY_REGISTERED, KEY_REVOKED, KEY_ROTATED, TIME_FORMAT, entry_content
from .keys import SigningKey, signing_key
from .merkle import leaf_hash  # noqa: F401  (kept importable from here for callers)
from .models import Checkpoint, LedgerEntry, LedgerHead, TreeNode
from .note import NoteError, checkpoint_text, parse_checkpoint, parse_note, sign_note

KIND_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
SUBJECT_RE = re.compile(r"^[a-z_]+\.[a-z_]+:[^\s]+$|^[a-z_]+:[^\s]+$")
SYSTEM_ACTOR = "system"


class LedgerKeyMismatch(ImproperlyConfigured):
    """The configured signing key is not the key the ledger says is active."""


class CheckpointConflict(Exception):
    """Signing this checkpoint would contradict one signed before; Custos refuses."""


def actor_name(actor) -> str:
    if actor is None:
        return SYSTEM_ACTOR
    if isinstance(actor, str):
        return actor
    return actor.get_username()


def key_subject(key_id: str) -> str:
    return f"audit.key:{key_id}"


def _prepared_cursor(connection):
    """A psycopg cursor with server-side binding on Django's connection (same transaction).

    Django's default client-side binding cannot prepare statements; the two statements every
    append runs while holding the lock are parsed and planned once per connection instead.
    """
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _lock_head() -> LedgerHead:
    """Lock and return the head row, creating it if a flush removed it.

    Raw SQL: this runs once per append and its cost adds to the time the lock is held.
    """
    connection = transaction.get_connection()
    sql = "SELECT size, last_hash, frontier, key_id FROM audit_ledgerhead WHERE id = 1"
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"  # SQLite needs none: its IMMEDIATE transactions already serialise writers
    if connection.vendor == "postgresql":
        with _prepared_cursor(connection) as cursor:
            cursor.execute(sql, prepare=True)
            row = cursor.fetchone()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
    if row is None:
        LedgerHead.objects.bulk_create([LedgerHead(id=1)], ignore_conflicts=True)
        return _lock_head()
    size, last_hash, frontier, key_id = row
    head = LedgerHead(id=1, size=size, last_hash=bytes(last_hash), frontier=bytes(frontier), key_id=key_id)
    head._state.adding, head._state.db = False, connection.alias
    return head


def _write(head: LedgerHead, key: SigningKey, *, kind, subject, payload, actor) -> LedgerEntry:
    """Sign the entry that follows HEAD (locked) with KEY and advance HEAD in memory.

    Nothing is written yet: ``_save_head`` stores the pending entries, tree nodes and head.
    """
    created_at = datetime.now(UTC)
    prev = bytes(head.last_hash)
    content = entry_content(
        seq=head.size,
        created_at=created_at,
        kind=kind,
        subject=subject,
        actor=actor_name(actor),
        payload=payload,
        prev_hash=prev,
        key_id=key.key_id,
    )
    data = canonical_json(content)
    entry = LedgerEntry(
        seq=head.size,
        created_at=datetime.strptime(content["time"], TIME_FORMAT).replace(tzinfo=UTC),
        kind=kind,
        subject=subject,
        actor=content["actor"],
        payload=payload,
        prev_hash=prev,
        entry_hash=merkle.leaf_hash(data),
        signature=key.sign(data),
        key_id=key.key_id,
    )
    frontier, completed = merkle.frontier_append(head.frontier_hashes(), head.size, entry.entry_hash)
    pending = head.__dict__.setdefault("_pending", ([], []))
    pending[0].append(entry)
    pending[1].extend(TreeNode(id=TreeNode.node_id(lv, ix), hash=h) for lv, ix, h in completed if lv > 0)
    head.size += 1
    head.last_hash = entry.entry_hash
    head.frontier = b"".join(frontier)
    return entry


# One round trip on PostgreSQL while the head is locked: the entries, the completed tree nodes
# and the head's advance. (Data-modifying WITH clauses always run, referenced or not.)
_POSTGRES_PERSIST = """
WITH new_entries AS (
    INSERT INTO audit_ledgerentry
        (seq, created_at, kind, subject, actor, payload, prev_hash, entry_hash, signature, key_id)
    SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::varchar[], %s::varchar[], %s::varchar[],
                         %s::jsonb[], %s::bytea[], %s::bytea[], %s::bytea[], %s::varchar[])
), new_nodes AS (
    INSERT INTO audit_treenode (id, hash) SELECT * FROM unnest(%s::bigint[], %s::bytea[])
)
UPDATE audit_ledgerhead SET size = %s, last_hash = %s, frontier = %s, key_id = %s WHERE id = 1
"""


def _save_head(head: LedgerHead) -> None:
    """Store HEAD's pending entries and tree nodes and its new state, in the current transaction."""
    entries, nodes = head.__dict__.pop("_pending", ([], []))
    connection = transaction.get_connection()
    if connection.vendor == "postgresql" and entries:
        columns = [[getattr(e, f) for e in entries] for f in ("seq", "created_at", "kind", "subject", "actor")]
        columns.append([json.dumps(e.payload) for e in entries])
        columns += [[bytes(getattr(e, f)) for e in entries] for f in ("prev_hash", "entry_hash", "signature")]
        columns.append([e.key_id for e in entries])
        with _prepared_cursor(connection) as cursor:
            cursor.execute(
                _POSTGRES_PERSIST,
                [
                    *columns,
                    [n.id for n in nodes],
                    [bytes(n.hash) for n in nodes],
                    head.size,
                    bytes(head.last_hash),
                    bytes(head.frontier),
                    head.key_id,
                ],
                prepare=True,
            )
        for e in entries:
            e._state.adding, e._state.db = False, connection.alias
        return
    for e in entries:
        e.save(force_insert=True)
    if nodes:
        TreeNode.objects.bulk_create(nodes)
    LedgerHead.objects.filter(id=1).update(
        size=head.size, last_hash=head.last_hash, frontier=head.frontier, key_id=head.key_id
    )


def _ensure_genesis(head: LedgerHead, key: SigningKey) -> None:
    """Make entry 0 register KEY when the ledger is empty; otherwise KEY must be the active key."""
    if head.size == 0:
        _write(
            head,
            key,
            kind=KEY_REGISTERED,
            subject=key_subject(key.key_id),
            payload={"key_id": key.key_id, "verifier_key": key.verifier_key},
            actor=None,
        )
        head.key_id = key.key_id
    elif head.key_id != key.key_id:
        raise LedgerKeyMismatch(
            f"The key in CUSTOS_SIGNING_KEY_FILE (id {key.key_id}) is not the ledger's active signing key "
            f"(id {head.key_id}). Restore that key file, or change keys with `manage.py ledger keys rotate`."
        )


def ledger_append(*, kind: str, subject: str, payload: dict, actor) -> LedgerEntry:
    """Append one signed entry inside the caller's transaction and return it.

    The head row is locked for the rest of the transaction, so concurrent writers take turns:
    sequence numbers stay gapless and the chain never forks. If the caller's transaction
    rolls back, the entry, its tree nodes and the head's advance roll back with it.
    """
    if not KIND_RE.match(kind):
        raise ValueError(f"Ledger kind must be a dotted lower-case name, got {kind!r}.")
    if not SUBJECT_RE.match(subject):
        raise ValueError(f"Ledger subject must look like 'app.model:id', got {subject!r}.")
    if kind in (KEY_REGISTERED, KEY_ROTATED, KEY_REVOKED):
        raise ValueError(f"{kind} entries are written only by the ledger's key services.")
    key = signing_key()
    canonical_json(payload)  # refuse non-JSON payloads before taking the lock
    # No savepoint: a failed append must doom the caller's change too (and it saves two round
    # trips while the head is locked).
    with transaction.atomic(savepoint=False):
        head = _lock_head()
        _ensure_genesis(head, key)
        entry = _write(head, key, kind=kind, subject=subject, payload=payload, actor=actor)
        _save_head(head)
    return entry


@transaction.atomic
def ledger_key_rotate(*, new_key: SigningKey, actor=None) -> LedgerEntry:
    """Hand signing over to NEW_KEY with an entry signed by the current key that names it.

    The caller installs NEW_KEY's file as CUSTOS_SIGNING_KEY_FILE once this commits (the
    ``ledger keys rotate`` command does). Entries signed before still verify with the old key.
    """
    key = signing_key()
    head = _lock_head()
    _ensure_genesis(head, key)
    if new_key.key_id == key.key_id or LedgerEntry.objects.filter(subject=key_subject(new_key.key_id)).exists():
        raise ValueError(f"Key {new_key.key_id} was used by this ledger before; rotate to a new key.")
    entry = _write(
        head,
        key,
        kind=KEY_ROTATED,
        subject=key_subject(new_key.key_id),
        payload={"old_key_id": key.key_id, "new_key_id": new_key.key_id, "new_verifier_key": new_key.verifier_key},
        actor=actor,
    )
    head.key_id = new_key.key_id
    _save_head(head)
    return entry


@transaction.atomic
def ledger_key_revoke(*, key_id: str, reason: str, actor=None) -> LedgerEntry:
    """Record that retired key KEY_ID must no longer be trusted (the active key cannot be revoked)."""
    key = signing_key()
    head = _lock_head()
    _ensure_genesis(head, key)
    if key_id == head.key_id:
        raise ValueError("The active signing key cannot be revoked; rotate to a new key first.")
    known = LedgerEntry.objects.filter(kind__in=[KEY_REGISTERED, KEY_ROTATED], subject=key_subject(key_id)).exists()
    if not known:
        raise ValueError(f"Key {key_id} is not a key of this ledger.")
    if LedgerEntry.objects.filter(kind=KEY_REVOKED, subject=key_subject(key_id)).exists():
        raise ValueError(f"Key {key_id} is already revoked.")
    entry = _write(
        head, key, kind=KEY_REVOKED, subject=key_subject(key_id), payload={"key_id": key_id, "reason": reason}, actor=actor
    )
    _save_head(head)
    return entry


def _export_checkpoint(checkpoint: Checkpoint) -> Path:
    """Write CHECKPOINT's note to the export directory (one file per size, plus ``latest``)."""
    folder = Path(settings.CUSTOS_CHECKPOINT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"checkpoint-{checkpoint.tree_size:012d}.txt"
    for target in (path, folder / "latest"):
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(checkpoint.note)
        os.replace(tmp, target)
    return path


def _check_exported(size: int, root: bytes) -> None:
    """Refuse to go on from a tree that contradicts the last checkpoint exported outside the database.

    The database may have been rewritten; the export directory is the anchor that says so.
    """
    latest = Path(settings.CUSTOS_CHECKPOINT_DIR) / "latest"
    if not latest.is_file():
        return
    try:
        exported = parse_checkpoint(parse_note(latest.read_text())[0])
    except NoteError as exc:
        raise CheckpointConflict(f"The exported checkpoint {latest} is unreadable: {exc}") from exc
    if exported.origin != settings.CUSTOS_LOG_ORIGIN:
        return  # another log's checkpoint: not ours to compare
    if exported.size > size:
        raise CheckpointConflict(
            f"The ledger has {size} entries but a checkpoint of {exported.size} was exported: entries were removed. "
            "(If a new ledger was started on purpose, move the old CUSTOS_CHECKPOINT_DIR aside.)"
        )
    if exported.size == size:
        consistent = exported.root == root
    else:
        proof = tree.consistency_proof(old_size=exported.size, new_size=size)
        consistent = merkle.verify_consistency(exported.size, size, exported.root, root, proof)
    if not consistent:
        raise CheckpointConflict(
            f"The ledger is not consistent with the checkpoint of {exported.size} exported before: refusing to sign."
        )


@transaction.atomic
def checkpoint_create() -> Checkpoint:
    """Sign a checkpoint of the ledger as it stands, after proving it extends the last one.

    Returns the latest checkpoint unchanged when nothing was appended since. Raises
    CheckpointConflict rather than sign a tree inconsistent with an earlier checkpoint. The
    note is also written to CUSTOS_CHECKPOINT_DIR, the anchor outside the database.
    """
    key = signing_key()
    head = _lock_head()
    _ensure_genesis(head, key)
    _save_head(head)
    size, root = head.size, merkle.frontier_root(head.frontier_hashes())
    _check_exported(size, root)
    latest = Checkpoint.objects.order_by("-tree_size").first()
    if latest is not None:
        if latest.tree_size > size:
            raise CheckpointConflict(
                f"The ledger has {size} entries but checkpoint {latest.tree_size} was signed before: refusing."
            )
        if latest.tree_size == size:
            if bytes(latest.root_hash) != root:
                raise CheckpointConflict(f"The tree of size {size} no longer has the root signed before: refusing.")
            _export_checkpoint(latest)
            return latest
        proof = tree.consistency_proof(old_size=latest.tree_size, new_size=size)
        if not merkle.verify_consistency(latest.tree_size, size, bytes(latest.root_hash), root, proof):
            raise CheckpointConflict(
                f"The tree of size {size} is not consistent with checkpoint {latest.tree_size}: refusing to sign."
            )
    note = sign_note(checkpoint_text(settings.CUSTOS_LOG_ORIGIN, size, root), key.name, key.private_key)
    checkpoint = Checkpoint(tree_size=size, root_hash=root, note=note, key_id=key.key_id, created_at=datetime.now(UTC))
    checkpoint.save(force_insert=True)
    _export_checkpoint(checkpoint)
    return checkpoint
