"""The one write path to the ledger."""

import hashlib
import re
from datetime import UTC, datetime

from django.db import transaction

from .canonical import canonical_json
from .keys import signing_key
from .models import LedgerEntry, LedgerHead, entry_content

KIND_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
SUBJECT_RE = re.compile(r"^[a-z_]+\.[a-z_]+:[^\s]+$|^[a-z_]+:[^\s]+$")
SYSTEM_ACTOR = "system"


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def actor_name(actor) -> str:
    if actor is None:
        return SYSTEM_ACTOR
    if isinstance(actor, str):
        return actor
    return actor.get_username()


def ledger_append(*, kind: str, subject: str, payload: dict, actor) -> LedgerEntry:
    """Append one signed entry inside the caller's transaction and return it.

    The head row is locked for the rest of the transaction, so concurrent writers take turns:
    sequence numbers stay gapless and the chain never forks. If the caller's transaction
    rolls back, the entry and the head's advance roll back with it.
    """
    if not KIND_RE.match(kind):
        raise ValueError(f"Ledger kind must be a dotted lower-case name, got {kind!r}.")
    if not SUBJECT_RE.match(subject):
        raise ValueError(f"Ledger subject must look like 'app.model:id', got {subject!r}.")
    key = signing_key()
    canonical_json(payload)  # refuse non-JSON payloads before taking the lock
    with transaction.atomic():
        head = LedgerHead.objects.select_for_update().get(id=1)  # created by migration 0001
        content = entry_content(
            seq=head.size,
            created_at=datetime.now(UTC),
            kind=kind,
            subject=subject,
            actor=actor_name(actor),
            payload=payload,
            prev_hash=bytes(head.last_hash),
            key_id=key.key_id,
        )
        data = canonical_json(content)
        entry = LedgerEntry(
            seq=head.size,
            created_at=datetime.strptime(content["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
            kind=kind,
            subject=subject,
            actor=content["actor"],
            payload=payload,
            prev_hash=bytes(head.last_hash),
            entry_hash=leaf_hash(data),
            signature=key.sign(data),
            key_id=key.key_id,
        )
        entry.save(force_insert=True)
        LedgerHead.objects.filter(id=1).update(size=head.size + 1, last_hash=entry.entry_hash)
    return entry
