"""Verify the whole stored ledger: every entry, the chain, signatures, tree, checkpoints, head."""

from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

from . import merkle, tree
from .canonical import canonical_json
from .chain import ChainError, ChainVerifier, entry_content
from .keys import signing_key
from .models import Checkpoint, LedgerEntry, LedgerHead
from .note import NoteError, open_checkpoint, parse_checkpoint, parse_note, parse_verifier_key

CHUNK = 2000


@dataclass
class VerifyResult:
    """What verification found: ``ok``, the size checked, and the first failure if any."""

    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    checkpoints: int = 0
    external: int = 0
    error: ChainError | None = None
    keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def _stored_rows():
    fields = ("seq", "created_at", "kind", "subject", "actor", "payload", "prev_hash", "entry_hash", "signature", "key_id")
    return LedgerEntry.objects.order_by("seq").values_list(*fields).iterator(chunk_size=CHUNK)


def ledger_verify(*, external_checkpoints=(), progress=None) -> VerifyResult:
    """Recompute every entry hash, the chain, signatures, roots at every stored and external checkpoint.

    EXTERNAL_CHECKPOINTS are (label, signed note text) pairs kept outside the database.
    PROGRESS, if given, is called with (entries checked, total) every few thousand entries.
    """
    result = VerifyResult()
    stored = list(Checkpoint.objects.order_by("tree_size").values_list("tree_size", "root_hash", "note", "key_id"))
    external = []
    for label, note in external_checkpoints:
        try:
            text, _ = parse_note(note)
            external.append((label, note, parse_checkpoint(text)))
        except NoteError as exc:
            result.error = ChainError(None, f"external checkpoint {label} is malformed: {exc}")
            return result
    head = LedgerHead.objects.filter(id=1).first()
    total = head.size if head else 0
    verifier = ChainVerifier(want_roots=[s for s, *_ in stored] + [c.size for *_, c in external])
    try:
        for seq, created_at, kind, subject, actor, payload, prev, entry_hash, signature, key_id in _stored_rows():
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
            if progress and verifier.size % 5000 == 0:
                progress(verifier.size, total)
        if progress:
            progress(verifier.size, total)
        result.size, result.root = verifier.size, verifier.root
        result.keys = sorted(verifier.keys)
        _check_checkpoints(verifier, stored, result)
        _check_external(verifier, external, result)
        _check_head(verifier, head)
        _check_configured_key(verifier)
    except ChainError as exc:
        result.error = exc
        result.size = verifier.size
    return result


def _check_checkpoints(verifier, stored, result):
    previous = None
    for size, root, note, key_id in stored:
        if size > verifier.size:
            raise ChainError(
                verifier.size,
                f"checkpoint at size {size} was signed but the ledger ends at {verifier.size} entries (entries removed)",
            )
        signer = verifier.keys.get(key_id)
        try:
            if signer is None:
                raise NoteError(f"signed with unknown key {key_id}")
            body = open_checkpoint(note, [signer])
        except NoteError as exc:
            raise ChainError(max(size - 1, 0), f"stored checkpoint at size {size} does not verify: {exc}") from exc
        if body.size != size or body.root != bytes(root):
            raise ChainError(max(size - 1, 0), f"stored checkpoint at size {size} disagrees with its signed note")
        if verifier.roots_at[size] != body.root:
            raise ChainError(
                max(size - 1, 0), f"the first {size} entries do not hash to the root of the checkpoint at size {size}"
            )
        if previous is not None:  # and the stored tree nodes still prove it extends the one before
            old_size, old_root = previous
            proof = tree.consistency_proof(old_size=old_size, new_size=size)
            if not merkle.verify_consistency(old_size, size, old_root, body.root, proof):
                raise ChainError(old_size, f"the stored tree nodes do not prove checkpoint {size} extends {old_size}")
        previous = (size, body.root)
        result.checkpoints += 1


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
    if head is None:
        if verifier.size:
            raise ChainError(None, "the ledger head row is missing")
        return
    if head.size != verifier.size or bytes(head.last_hash) != verifier.prev or head.frontier_hashes() != verifier.frontier:
        raise ChainError(
            min(head.size, verifier.size), f"the head row (size {head.size}) disagrees with the {verifier.size} entries"
        )
    if verifier.size and head.key_id != verifier.active:
        raise ChainError(None, f"the head names key {head.key_id} but the ledger's active key is {verifier.active}")


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
