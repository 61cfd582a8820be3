"""Verify the whole stored ledger: every entry, the chain, signatures, every stored tree node,
every stored checkpoint, and the head row.

One pass over the entries in sequence order rebuilds the Merkle tree (``ChainVerifier``); the
stored tree nodes and checkpoints are read alongside, in the order the walk reaches them, a
chunk at a time, and each is compared with what the entries say it must be. Memory stays
bounded by the chunk size and the tree's height, whatever the ledger's size.
"""

from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import Q

from . import merkle
from .canonical import canonical_json
from .chain import TIME_FORMAT, ChainError, ChainVerifier, entry_content
from .keys import signing_key
from .models import Checkpoint, LedgerEntry, LedgerHead, TreeNode
from .note import NoteError, checkpoint_text, open_checkpoint, parse_checkpoint, parse_note, parse_verifier_key
from .tree import node_position

CHUNK = 2000

# Entry and checkpoint times come from the clocks of whichever processes sealed and signed them
# (web nodes, workers): a checkpoint is allowed to look this much older than the last entry it
# covers, or younger than the first one it does not, before verification calls its time false.
CLOCK_TOLERANCE = timedelta(minutes=1)


@dataclass
class VerifyResult:
    """What verification found: ``ok``, the size checked, and the first failure if any."""

    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    checkpoints: int = 0
    external: int = 0
    nodes: int = 0
    error: ChainError | None = None
    keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def _as_bytes(value) -> bytes | None:
    """VALUE if a binary column holds bytes, else None (SQLite lets an owner store any type in any column)."""
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What reading a row an owner filled with values of the wrong type raises (SQLite keeps any
# type in any column; a payload may hold an integer RFC 8785 cannot sign): reported as a
# tampered row, never a traceback.
UNREADABLE = (TypeError, ValueError, AttributeError)


def _stored_rows():
    fields = ("seq", "created_at", "kind", "subject", "actor", "payload", "prev_hash", "entry_hash", "signature", "key_id")
    return LedgerEntry.objects.order_by("seq").values_list(*fields).iterator(chunk_size=CHUNK)


@contextmanager
def _snapshot():
    """Read everything from one snapshot, so that appends committed meanwhile are not mistaken for tampering.

    On PostgreSQL that is a read-only REPEATABLE READ transaction (unless the caller already
    holds a transaction, whose view is then used). SQLite's writers take the database lock for
    the whole of a transaction, so there verification reads in autocommit, as before.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def ledger_verify(*, external_checkpoints=(), progress=None) -> VerifyResult:
    """Recompute every entry hash, the chain, signatures, every stored tree node and checkpoint, the head.

    EXTERNAL_CHECKPOINTS are (label, signed note text) pairs kept outside the database.
    PROGRESS, if given, is called with (entries checked, total) every few thousand entries.
    """
    result = VerifyResult()
    external = []
    for label, note in external_checkpoints:
        try:
            text, _ = parse_note(note)
            external.append((label, note, parse_checkpoint(text)))
        except NoteError as exc:
            result.error = ChainError(None, f"external checkpoint {label} is malformed: {exc}")
            return result
    with _snapshot():
        head = LedgerHead.objects.filter(id=1).first()
        total = head.size if head else 0
        verifier = ChainVerifier(want_roots=[c.size for *_, c in external])
        nodes = StoredTree()
        rows = _stored_rows()
        try:
            checkpoints = StoredCheckpoints(origin=settings.CUSTOS_LOG_ORIGIN)
            checkpoints.after_entry(verifier, None)
            deferred = []
            while True:
                try:
                    row = next(rows, None)
                    if row is None:
                        break
                    seq, created_at, kind, subject, actor, payload, prev, entry_hash, signature, key_id = row
                    content = entry_content(
                        seq=seq,
                        created_at=created_at,
                        kind=kind,
                        subject=subject,
                        actor=actor,
                        payload=payload,
                        prev_hash=bytes(prev),
                        key_id=key_id,
                    )
                    verifier.add(
                        canonical=canonical_json(content),
                        entry_hash=bytes(entry_hash),
                        signature=bytes(signature),
                        key_id=key_id,
                        seq=seq,
                    )
                except UNREADABLE as exc:
                    raise ChainError(
                        verifier.size,
                        f"the stored row in its place is not a well-formed entry (the row was altered: "
                        f"{type(exc).__name__}: {exc})",
                    ) from exc
                # The nodes an entry completes are compared after the next entry is in, so that an
                # entry re-signed with the ledger's key is named by the chain break it causes.
                nodes.check_all(deferred)
                deferred = verifier.completed
                checkpoints.after_entry(verifier, created_at)
                if progress and verifier.size % 5000 == 0:
                    progress(verifier.size, total)
            if progress:
                progress(verifier.size, total)
            result.size, result.root = verifier.size, verifier.root
            result.keys = sorted(verifier.keys)
            nodes.check_all(deferred)
            result.nodes = nodes.count
            # Entries removed from the end leave nodes behind: checkpoints and the head say so more plainly.
            checkpoints.finish(verifier)
            result.checkpoints = checkpoints.count
            _check_external(verifier, external, result)
            _check_head(verifier, head)
            nodes.finish(verifier.size)
            _check_configured_key(verifier)
        except ChainError as exc:
            result.error = exc
            result.size = verifier.size
        finally:
            # Close the server-side cursor now, in this transaction: left to the garbage collector,
            # its CLOSE would run in whatever transaction is current then, and fail it.
            rows.close()
    return result


def _node_name(level: int, index: int) -> str:
    first = index << level
    return f"tree node (level {level}, index {index}), over entries {first}..{first + (1 << level) - 1},"


class StoredTree:
    """Compare every stored tree node with the one the entries complete, and find nodes that should not exist.

    The walk completes the nodes of each level in index order, so each level's stored nodes are
    read in id order, CHUNK at a time (keyset pages, no cursor held open), and matched one by one.
    """

    def __init__(self, chunk: int = CHUNK):
        self.chunk = chunk
        self.pending: dict[int, deque] = {}
        self.count = 0

    def check_all(self, completed) -> None:
        for level, index, h in completed:
            self.check(level, index, h)

    def check(self, level: int, index: int, recomputed: bytes) -> None:
        """Raise ChainError unless the stored node (LEVEL, INDEX) exists and hashes to RECOMPUTED."""
        pending = self.pending.get(level)
        if not pending:
            pending = self.pending[level] = self._read(level, index)
        if not pending or pending[0][0] != index:
            raise ChainError(None, f"{_node_name(level, index)} is missing from the stored tree")
        _, stored = pending.popleft()
        if stored != recomputed:
            raise ChainError(
                None,
                f"{_node_name(level, index)} does not hold the hash of those entries as stored "
                "(the stored node, or those entries, were altered)",
            )
        self.count += 1

    def _read(self, level: int, start: int) -> deque:
        rows = (
            TreeNode.objects.filter(id__gte=TreeNode.node_id(level, start), id__lt=TreeNode.node_id(level + 1, 0))
            .order_by("id")
            .values_list("id", "hash")[: self.chunk]
        )
        page = deque()
        for node_id, h in rows:
            if not _is_int(node_id):
                raise ChainError(None, f"tree node id {node_id!r} is stored, but there is no such node in any tree")
            page.append((node_position(node_id)[1], _as_bytes(h)))
        return page

    def finish(self, size: int) -> None:
        """After the last entry: raise ChainError if a node is stored that the tree of SIZE entries lacks."""
        top = max(size.bit_length() - 1, 0)  # levels 1..top hold complete subtrees
        outside = Q(id__lt=TreeNode.node_id(1, 0)) | Q(id__gte=TreeNode.node_id(top + 1, 0))
        for level in range(1, top + 1):  # past the last complete subtree of the level
            outside |= Q(id__gte=TreeNode.node_id(level, size >> level), id__lt=TreeNode.node_id(level + 1, 0))
        stray = TreeNode.objects.filter(outside).order_by("id").values_list("id", flat=True).first()
        if stray is None:
            return
        if not _is_int(stray) or stray < 0:
            raise ChainError(None, f"tree node id {stray!r} is stored, but there is no such node in any tree")
        level, index = node_position(stray)
        raise ChainError(
            None,
            f"tree node (level {level}, index {index}) is stored, but a tree of {size} entries has no such node"
            + (" (leaves are the entries' own hashes)" if level == 0 else ""),
        )


class StoredCheckpoints:
    """Check each stored checkpoint when the walk reaches its size: note, signer, every column, time.

    A checkpoint at size S must be the one note Custos signs for the first S entries: the body
    ``origin / S / root`` and nothing else, one signature, by the key active at S. Ed25519
    signatures are deterministic and verified strictly, so any change to the note shows. Its time
    is signed in the note (an extension line) and must equal the row's; a checkpoint signed before
    Custos signed times has its time held between the last entry it covers and the first it does not.
    """

    COLUMNS = ("tree_size", "root_hash", "note", "key_id", "created_at")

    def __init__(self, *, origin: str, chunk: int = CHUNK):
        self.origin = origin
        self.chunk = chunk
        self.page = deque()
        self.last = None  # tree_size of the last row read
        self.next = self._read()
        self.waiting = None  # (size, time) of the last checkpoint checked, until the next entry's time is known
        self.count = 0

    def _read(self):
        """The next stored checkpoint in tree-size order (keyset pages of CHUNK rows), or None."""
        if not self.page:
            rows = Checkpoint.objects.order_by("tree_size")
            if self.last is not None:
                rows = rows.filter(tree_size__gt=self.last)
            try:
                self.page.extend(rows.values_list(*self.COLUMNS)[: self.chunk])
            except UNREADABLE as exc:
                after = "" if self.last is None else f" after size {self.last}"
                raise ChainError(None, f"the stored checkpoints{after} cannot be read (a row was altered: {exc})") from exc
        if not self.page:
            return None
        row = self.page.popleft()
        if not _is_int(row[0]):
            raise ChainError(None, f"stored checkpoint at size {row[0]!r}: no tree has that size")
        self.last = row[0]
        return row

    def after_entry(self, verifier: ChainVerifier, entry_time) -> None:
        """Call once before the first entry (ENTRY_TIME None) and after each verified entry with its time."""
        if self.waiting is not None and entry_time is not None:
            size, signed_at = self.waiting
            if signed_at > entry_time + CLOCK_TOLERANCE:
                raise ChainError(
                    None,
                    f"stored checkpoint at size {size}: its time {signed_at:%Y-%m-%dT%H:%M:%S.%fZ} is after the time "
                    f"of entry {size}, which it does not cover (the time was altered)",
                )
            self.waiting = None
        while self.next is not None and self.next[0] <= verifier.size:
            if self.next[0] < verifier.size:  # only a size below 0 can be passed over
                raise ChainError(None, f"stored checkpoint at size {self.next[0]}: no tree has that size")
            self._check(verifier, *self.next, entry_time)
            self.waiting = (self.next[0], self.next[4])
            self.count += 1
            self.next = self._read()

    def _check(self, verifier, size, root, note, key_id, signed_at, last_entry_time) -> None:
        name = f"stored checkpoint at size {size}"
        if key_id != verifier.active:
            active = f"key {verifier.active}" if verifier.active else "no key"
            raise ChainError(None, f"{name}: it names key {key_id}, but {active} is active at that size")
        try:
            text, signatures = parse_note(note)
            open_checkpoint(note, [verifier.keys[key_id]])
        except NoteError as exc:
            raise ChainError(None, f"{name}: its note does not verify: {exc}") from exc
        if len(signatures) != 1:
            raise ChainError(None, f"{name}: its note carries {len(signatures)} signatures, where Custos signs one")
        signed_time = parse_checkpoint(text).time
        expected = checkpoint_text(self.origin, size, verifier.root, time=signed_time)
        if text != expected:
            raise ChainError(None, f"{name}: its note {self._difference(text, size, verifier.root)}")
        if _as_bytes(root) != verifier.root:
            raise ChainError(None, f"{name}: its root_hash column disagrees with its signed note")
        if not isinstance(signed_at, datetime):
            raise ChainError(None, f"{name}: its time {signed_at!r} is not a time (the row was altered)")
        if signed_time is not None and signed_at.astimezone(UTC).strftime(TIME_FORMAT) != signed_time:
            raise ChainError(
                None,
                f"{name}: its time {signed_at:%Y-%m-%dT%H:%M:%S.%fZ} is not the time signed in its note ({signed_time})",
            )
        if last_entry_time is not None and signed_at < last_entry_time - CLOCK_TOLERANCE:
            raise ChainError(
                None,
                f"{name}: its time {signed_at:%Y-%m-%dT%H:%M:%S.%fZ} is before the time of entry {size - 1}, "
                "which it covers (the time was altered)",
            )

    def _difference(self, text: str, size: int, root: bytes) -> str:
        """Say how the signed note's body differs from the checkpoint of the first SIZE entries."""
        body = parse_checkpoint(text)  # parse_note and open_checkpoint accepted it
        if body.origin != self.origin:
            return f"is for log {body.origin!r}, not {self.origin!r}"
        if body.size != size:
            return f"is the checkpoint of size {body.size}, not of size {size}"
        if body.root != root:
            return f"commits to a root that is not the root of the first {size} entries"
        return "carries extension lines, which Custos never signs"

    def finish(self, verifier: ChainVerifier) -> None:
        """After the last entry: the last checkpoint's time is not in the future; none lies past the end."""
        if self.waiting is not None:
            size, signed_at = self.waiting
            if signed_at > datetime.now(UTC) + CLOCK_TOLERANCE:
                raise ChainError(
                    None, f"stored checkpoint at size {size}: its time {signed_at:%Y-%m-%dT%H:%M:%S.%fZ} is in the future"
                )
        if self.next is not None:
            raise ChainError(
                verifier.size,
                f"checkpoint at size {self.next[0]} was signed but the ledger ends at {verifier.size} entries "
                "(entries removed)",
            )


def _check_external(verifier, external, result):
    trusted_verifiers = list(verifier.keys.values())
    try:
        trusted_verifiers.append(parse_verifier_key(signing_key().verifier_key))
    except ImproperlyConfigured:
        pass
    for label, note, checkpoint in external:
        try:
            open_checkpoint(note, trusted_verifiers)
        except NoteError as exc:
            raise ChainError(None, f"external checkpoint {label} does not verify: {exc}") from exc
        if checkpoint.size > verifier.size:
            raise ChainError(
                verifier.size,
                f"external checkpoint {label} commits to {checkpoint.size} entries but the ledger has only "
                f"{verifier.size}: entries {verifier.size}..{checkpoint.size - 1} were removed",
            )
        if verifier.roots_at[checkpoint.size] != checkpoint.root:
            raise ChainError(
                None,
                f"the ledger's first {checkpoint.size} entries (0..{checkpoint.size - 1}) do not match external "
                f"checkpoint {label}: history was rewritten",
            )
        result.external += 1


def _check_head(verifier, head):
    """The head row holds the ledger's size, last hash, tree border and active key: each must match the walk."""
    n = verifier.size
    if head is None:
        if n:
            raise ChainError(None, "the ledger head row is missing")
        return
    if head.size != n:
        raise ChainError(None, f"the head row's size is {head.size}, but the ledger holds {n} entries")
    if _as_bytes(head.last_hash) != verifier.prev:
        last = f"the hash of entry {n - 1}" if n else "32 zero bytes (the ledger is empty)"
        raise ChainError(None, f"the head row's last_hash is not {last}")
    if _as_bytes(head.frontier) != b"".join(verifier.frontier):
        raise ChainError(None, f"the head row's frontier is not the right border of the tree of {n} entries")
    if head.key_id != (verifier.active or ""):
        raise ChainError(
            None, f"the head row names key {head.key_id!r}, but the ledger's active key is {verifier.active or 'none'}"
        )


def _check_configured_key(verifier):
    if not verifier.size:
        return
    try:
        key = signing_key()
    except ImproperlyConfigured:
        return  # verifying without the private key (for example on an auditor's copy) is allowed
    if key.key_id != verifier.active:
        raise ChainError(
            None,
            f"the configured signing key {key.key_id} is not the ledger's active key {verifier.active} "
            "(the ledger was re-signed by someone else, or the key file was replaced)",
        )
