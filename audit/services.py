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
from .kinds import is_registered
from .models import Checkpoint, LedgerEntry, LedgerHead, QueuedEntry, TreeNode
from .note import NoteError, checkpoint_text, parse_checkpoint, parse_note, sign_note

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
    """A psycopg cursor on Django's connection (same transaction) whose statements are prepared.

    Django's own cursors bind parameters client-side and never prepare; the few statements of
    the ledger's write path are parsed and planned once per connection instead. (Behind a
    connection pooler in transaction mode, use one that supports prepared statements, such as
    PgBouncer 1.21 or later with max_prepared_statements set.)
    """
    import psycopg  # PostgreSQL's driver: only on that backend (SQLite never comes here)

    connection.ensure_connection()
    connection.connection.prepare_threshold = 0  # Django leaves it None (off); its cursors ignore it
    return psycopg.Cursor(connection.connection)


_HEAD_COLUMNS = "SELECT size, last_hash, frontier, key_id FROM audit_ledgerhead WHERE id = 1"

# On PostgreSQL the ledger's writer lock is this transaction-scoped advisory lock. Unlike a row
# lock it can be tried without writing anything, so a writer can ask "is anyone sealing?" in
# one round trip and no WAL. (The head row is also locked FOR UPDATE, which reads its newest
# version whatever the statement's snapshot.)
HEAD_LOCK_KEY = 0x637573746F73  # "custos"

# The oldest queued entries, at most this many per transaction (a backlog is sealed in rounds).
SEAL_BATCH = 5000

# Without waiting, in one round trip: take the writer lock, the head and the oldest queued
# entries if no one holds the lock; if someone does, queue the entry given (if any) instead.
# (The queue is read with the statement's snapshot: entries committed while the lock was being
# taken stay queued, and their writers, finding the lock held, leave them to this transaction.)
_TRY_HEAD = f"""
WITH k AS (SELECT pg_try_advisory_xact_lock({HEAD_LOCK_KEY}) AS got),
locked AS ({_HEAD_COLUMNS} AND (SELECT got FROM k) FOR UPDATE),
taken AS (
    DELETE FROM audit_queuedentry
    WHERE (SELECT got FROM k) AND id IN (SELECT id FROM audit_queuedentry ORDER BY id LIMIT {SEAL_BATCH})
    RETURNING id, kind, subject, actor, payload
),
queued AS (
    INSERT INTO audit_queuedentry (queued_at, kind, subject, actor, payload)
    SELECT clock_timestamp(), q.kind, q.subject, q.actor, q.payload
    FROM (VALUES (%s::varchar, %s::varchar, %s::varchar, %s::text)) AS q (kind, subject, actor, payload)
    WHERE q.kind IS NOT NULL AND NOT (SELECT got FROM k)
    RETURNING id
)
SELECT (SELECT got FROM k), l.size, l.last_hash, l.frontier, l.key_id, (SELECT count(*) FROM queued),
       (SELECT json_agg(json_build_array(id, kind, subject, actor, payload) ORDER BY id) FROM taken)
FROM (SELECT 1) AS one LEFT JOIN locked AS l ON true
"""
_WAIT_HEAD = f"""
WITH k AS (SELECT pg_advisory_xact_lock({HEAD_LOCK_KEY}))
{_HEAD_COLUMNS} AND EXISTS (SELECT 1 FROM k) FOR UPDATE
"""


class _Busy(Exception):
    """Another transaction holds the head (and the entry, if one was given, is queued)."""


def _head_from(row, connection, *, taken=None) -> LedgerHead:
    size, last_hash, frontier, key_id = row
    head = LedgerHead(id=1, size=size, last_hash=bytes(last_hash), frontier=bytes(frontier), key_id=key_id)
    head._state.adding, head._state.db = False, connection.alias
    head._taken = taken  # queued entries already taken out of the queue with the lock, if it did so
    return head


def _after_commit(connection, callback) -> None:
    """Run CALLBACK once after this transaction commits."""
    if not any(func is callback for _sids, func, _robust in connection.run_on_commit):
        transaction.on_commit(callback, robust=True)


def _lock_head(*, wait: bool = True, queue: tuple | None = None, sealing: bool = False) -> LedgerHead:
    """Lock and return the head row, creating it if a flush removed it.

    With WAIT false (PostgreSQL only) raise _Busy at once when another transaction holds it,
    after queueing QUEUE = (kind, subject, actor, canonical payload) if given, in the same
    round trip. Raw SQL: this runs once per append and adds to the time the lock is held.

    On PostgreSQL, whoever holds the head or queued an entry seals the queue after it commits
    (unless SEALING: it is such a sealing round itself).
    """
    connection = transaction.get_connection()
    taken = None
    if connection.vendor == "postgresql":
        with _prepared_cursor(connection) as cursor:
            if wait:
                cursor.execute(_WAIT_HEAD, prepare=True)
                row = cursor.fetchone()
            else:
                cursor.execute(_TRY_HEAD, list(queue or (None, None, None, None)), prepare=True)
                got, *row, queued, taken = cursor.fetchone()
                if not got:
                    if queued and not sealing:
                        _after_commit(connection, seal_queued_if_free)
                    raise _Busy
                taken = taken or []
                row = row if row[0] is not None else None
        if not sealing:
            _after_commit(connection, seal_queued_now)
        if row is not None:
            return _head_from(row, connection, taken=taken)
    else:  # SQLite needs no lock: its IMMEDIATE transactions already serialise writers
        with connection.cursor() as cursor:
            cursor.execute(_HEAD_COLUMNS)
            row = cursor.fetchone()
        if row is not None:
            return _head_from(row, connection, taken=[])  # nothing is ever queued where writers take turns
    LedgerHead.objects.bulk_create([LedgerHead(id=1)], ignore_conflicts=True)  # a flush removed it
    head = _lock_head(wait=True, sealing=sealing)
    if taken:  # taken out of the queue above, in this transaction: they are sealed all the same
        head._taken = taken + (head._taken or [])
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


def ledger_append(*, kind: str, subject: str, payload: dict, actor, sealed: bool = False) -> LedgerEntry:
    """Append one entry inside the caller's transaction and return it.

    The entry commits or rolls back with the caller's change, and sequence numbers stay gapless
    with one chain, however many transactions append at once. How it gets its number:

    - When no other transaction holds the ledger's head (always on SQLite, whose writers take
      turns anyway), the entry is sealed at once: numbered, chained, signed and returned
      complete; the head stays locked until the caller's transaction ends.
    - When another transaction holds it (PostgreSQL under concurrent writers), the entry is
      queued in the caller's transaction and returned with ``seq`` None. After the commit it
      is sealed in a batch with the other queued entries by whichever process is sealing then
      (``seal_queued_now``), so concurrent writers share one lock hand-over and one WAL flush
      instead of taking turns for each entry. Entries queued by one transaction keep their order.

    Pass ``sealed=True`` when the caller must store the entry's ``seq`` with its change: it
    waits for the head instead of queueing.
    """
    if not is_registered(kind):
        raise ValueError(f"Unknown ledger kind {kind!r}: an app declares its kinds and registers them (audit.kinds).")
    kind = str(kind)  # a StrEnum member is stored, hashed and signed as its value
    if not SUBJECT_RE.match(subject):
        raise ValueError(f"Ledger subject must look like 'app.model:id', got {subject!r}.")
    if kind in (KEY_REGISTERED, KEY_ROTATED, KEY_REVOKED):
        raise ValueError(f"{kind} entries are written only by the ledger's key services.")
    key = signing_key()
    payload_json = canonical_json(payload)  # refuse non-JSON payloads before taking the lock
    connection = transaction.get_connection()
    may_queue = not sealed and connection.features.has_select_for_update_skip_locked
    # No savepoint: a failed append must doom the caller's change too (and it saves two round
    # trips while the head is locked).
    with transaction.atomic(savepoint=False):
        try:
            head = _lock_head(wait=not may_queue, queue=(kind, subject, actor_name(actor), payload_json.decode()))
        except _Busy:  # queued by _lock_head
            entry = LedgerEntry(seq=None, kind=kind, subject=subject, actor=actor_name(actor), payload=payload)
        else:
            _ensure_genesis(head, key)
            _take_queued(head, key)  # entries this transaction queued earlier, and any left unsealed, go first
            entry = _write(head, key, kind=kind, subject=subject, payload=payload, actor=actor)
            _save_head(head)
    return entry


_TAKE_QUEUED = f"""
DELETE FROM audit_queuedentry WHERE id IN (SELECT id FROM audit_queuedentry ORDER BY id LIMIT {SEAL_BATCH})
RETURNING id, kind, subject, actor, payload
"""


def _take_queued(head: LedgerHead, key: SigningKey) -> int:
    """Seal the queued entries this transaction sees (its own and committed ones), oldest first.

    The caller holds the head, so no other transaction is sealing: the rows are taken out of
    the queue (by ``_lock_head`` when it could, else here) and written as entries in the
    caller's transaction, and return to the queue if it rolls back. Returns how many.
    """
    rows = head._taken
    if rows is None:
        with _prepared_cursor(transaction.get_connection()) as cursor:
            cursor.execute(_TAKE_QUEUED, prepare=True)
            rows = sorted(cursor.fetchall())
    head._taken = []
    for _id, kind, subject, actor, payload in rows:
        _write(head, key, kind=kind, subject=subject, payload=json.loads(payload), actor=actor)
    return len(rows)


def _seal_round() -> int | None:
    """One transaction that seals up to SEAL_BATCH queued entries; None if the head was busy."""
    key = signing_key()
    with transaction.atomic():
        try:
            head = _lock_head(wait=False, sealing=True)
        except _Busy:
            return None
        _ensure_genesis(head, key)
        sealed = _take_queued(head, key)
        if sealed or head.__dict__.get("_pending"):
            _save_head(head)
        else:
            transaction.set_rollback(True)  # nothing written: no commit to flush
    return sealed


def seal_queued_now() -> None:
    """After a commit that held the head: seal the queue, unless someone else is at it.

    Never waits for the head. Whoever holds it runs this after its commit, and looks at the
    queue only *after* letting go of the head, so an entry queued while the head was held is
    never left behind; a busy head means its holder looks after it lets go. It goes on while
    entries keep arriving, until it finds the queue empty or the head taken by another writer
    (who then carries on): giving up earlier could strand entries whose writers counted on it.
    A holder that rolls back runs nothing; the next append, or the next checkpoint, seals what
    it leaves.
    """
    while QueuedEntry.objects.exists():
        if _seal_round() is None:
            return


def seal_queued_if_free() -> None:
    """After a commit that queued an entry: if the head is held, its holder will seal it; else seal.

    Asked after the commit, so a holder seen busy here looks at the queue after our entry is in.
    """
    with transaction.get_connection().cursor() as cursor:  # autocommit: taken and let go at once
        cursor.execute(f"SELECT pg_try_advisory_xact_lock({HEAD_LOCK_KEY})")
        if cursor.fetchone()[0]:
            seal_queued_now()


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
    _take_queued(head, key)  # a checkpoint covers every committed entry, queued ones included
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
    # The time is signed with the root (an extension line), so the row's created_at cannot move unseen.
    signed_at = datetime.strptime(datetime.now(UTC).strftime(TIME_FORMAT), TIME_FORMAT).replace(tzinfo=UTC)
    text = checkpoint_text(settings.CUSTOS_LOG_ORIGIN, size, root, time=signed_at.strftime(TIME_FORMAT))
    note = sign_note(text, key.name, key.private_key)
    checkpoint = Checkpoint(tree_size=size, root_hash=root, note=note, key_id=key.key_id, created_at=signed_at)
    checkpoint.save(force_insert=True)
    _export_checkpoint(checkpoint)
    return checkpoint
