"""Ledger entries as signed bytes, and the rules a sequence of them must satisfy: pure functions.

Importable without Django (stdlib + cryptography), so that ``manage.py ledger verify`` and the
offline verifier (``python -m audit.verifier``) apply exactly the same checks.

An entry's signed bytes are the RFC 8785 canonical JSON of ``{"seq", "time", "kind", "subject",
"actor", "payload", "prev", "key_id"}``; its hash is the RFC 6962 leaf hash of those bytes; its
signature is Ed25519 over those bytes. Keys are declared in the ledger itself: entry 0 is a
``ledger.key_registered`` entry that carries the first key's verifier key and is signed by it;
a ``ledger.key_rotated`` entry, signed by the active key, names the next one; a
``ledger.key_revoked`` entry withdraws a retired key. Every other entry must be signed by the
key active at its position, so an entry re-signed with any other key is caught.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable

from . import merkle
from .note import NoteError, Verifier, parse_verifier_key

KEY_REGISTERED = "ledger.key_registered"
KEY_ROTATED = "ledger.key_rotated"
KEY_REVOKED = "ledger.key_revoked"
KEY_KINDS = (KEY_REGISTERED, KEY_ROTATED, KEY_REVOKED)
ZERO_HASH = bytes(32)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class ChainError(Exception):
    """Verification failed at sequence number SEQ for the reason in the message."""

    def __init__(self, seq: int | None, message: str):
        self.seq = seq
        self.message = message
        super().__init__(f"entry {seq}: {message}" if seq is not None else message)


def entry_content(*, seq, created_at, kind, subject, actor, payload, prev_hash, key_id) -> dict:
    """The signed content of an entry: every field but its own hash and signature."""
    return {
        "seq": seq,
        "time": created_at.strftime(TIME_FORMAT),
        "kind": kind,
        "subject": subject,
        "actor": actor,
        "payload": payload,
        "prev": prev_hash.hex(),
        "key_id": key_id,
    }


def declared_keys(content: dict) -> list[Verifier]:
    """The verifier keys a key-lifecycle entry declares (none for other entries)."""
    payload = content.get("payload") or {}
    if content.get("kind") == KEY_REGISTERED:
        return [parse_verifier_key(payload["verifier_key"])]
    if content.get("kind") == KEY_ROTATED:
        return [parse_verifier_key(payload["new_verifier_key"])]
    return []


class ChainVerifier:
    """Check entries one by one in sequence order and rebuild the Merkle tree as it goes.

    ``add`` raises ChainError naming the entry and what is wrong with it. After each entry,
    ``completed`` lists the complete subtrees (level >= 1) that entry completed, as (level, index,
    hash), lowest first, so that a store of them can be compared node by node. After the last
    entry, ``root`` is the tree root at ``size``; ``roots_at`` holds the roots at the sizes asked for.
    """

    def __init__(self, *, want_roots: Iterable[int] = ()):
        self.size = 0
        self.prev = ZERO_HASH
        self.frontier: list[bytes] = []
        self.keys: dict[str, Verifier] = {}
        self.revoked: set[str] = set()
        self.active: str | None = None
        self.want_roots = set(want_roots)
        self.roots_at: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
        self.completed: list[tuple[int, int, bytes]] = []

    @property
    def root(self) -> bytes:
        return merkle.frontier_root(self.frontier)

    def add(self, *, canonical: bytes, entry_hash: bytes, signature: bytes, key_id: str, seq: int | None = None) -> dict:
        """Check the next entry (its signed bytes and stored hash, signature, key id); return its content."""
        expected = self.size
        where = expected if seq is None else seq
        if seq is not None and seq > expected:
            raise ChainError(expected, f"entry {expected} is missing (the next stored entry is {seq})")
        if seq is not None and seq != expected:
            raise ChainError(expected, f"a stored entry is numbered {seq} where entry {expected} belongs")
        if merkle.leaf_hash(canonical) != bytes(entry_hash):
            raise ChainError(where, "its content does not match its hash (the entry was altered)")
        try:
            content = json.loads(canonical)
        except ValueError as exc:
            raise ChainError(where, "its signed bytes are not JSON") from exc
        if not isinstance(content, dict) or content.get("seq") != expected:
            raise ChainError(where, f"it carries sequence number {content.get('seq')!r} where {expected} belongs")
        if content.get("prev") != self.prev.hex():
            raise ChainError(where, "its previous-entry hash does not match the entry before it (chain broken)")
        if content.get("key_id") != key_id:
            raise ChainError(where, "its stored key id differs from the signed one")
        try:
            declared = declared_keys(content)
        except (NoteError, KeyError, TypeError) as exc:
            raise ChainError(where, f"it declares a malformed key: {exc}") from exc
        if expected == 0:
            if content.get("kind") != KEY_REGISTERED or not declared or declared[0].key_id != key_id:
                raise ChainError(0, "the first entry must register the key that signs it")
            self.keys[key_id] = declared[0]
            self.active = key_id
        signer = self.keys.get(key_id)
        if signer is None:
            raise ChainError(where, f"it is signed with unknown key {key_id}")
        if key_id != self.active:
            raise ChainError(where, f"it is signed with key {key_id}, which is not the active key {self.active}")
        if not signer.verify(canonical, bytes(signature)):
            raise ChainError(where, "its signature does not verify")
        kind = content.get("kind")
        if kind == KEY_ROTATED and expected > 0:
            new = declared[0]
            if new.key_id in self.keys:
                raise ChainError(where, f"it rotates to key {new.key_id}, which was used before")
            self.keys[new.key_id] = new
            self.active = new.key_id
        elif kind == KEY_REVOKED:
            self.revoked.add(str((content.get("payload") or {}).get("key_id")))
        self.frontier, completed = merkle.frontier_append(self.frontier, self.size, bytes(entry_hash))
        self.completed = completed[1:]
        self.prev = bytes(entry_hash)
        self.size += 1
        if self.size in self.want_roots:
            self.roots_at[self.size] = self.root
        return content


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
