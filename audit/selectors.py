"""Reads of the ledger: entries, checkpoints, keys, proofs and evidence bundles."""

from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min
from django.utils.module_loading import import_string

from . import merkle, tree
from .canonical import canonical_json
from .chain import KEY_KINDS, KEY_REGISTERED, KEY_ROTATED, b64
from .models import Checkpoint, LedgerEntry, QueuedEntry
from .note import NoteError, open_checkpoint, parse_verifier_key
from .verifier import BUNDLE_FORMAT


def entries_visible_to(user, queryset=None):
    """The entries USER may read, under the read scope named by CUSTOS_LEDGER_READ_SCOPE.

    That setting is the dotted path of a function ``(queryset, user) -> queryset`` supplied by
    the application that knows what the subjects are (Custos's: entries about records of the
    business units the user may see); without one, a reader reads every entry.
    """
    queryset = LedgerEntry.objects.all() if queryset is None else queryset
    scope = getattr(settings, "CUSTOS_LEDGER_READ_SCOPE", "")
    return import_string(scope)(queryset, user) if scope else queryset


def subjects_about(subject: str) -> list[str]:
    """SUBJECT and every subject about the same piece of work, as the application that knows
    them says through CUSTOS_LEDGER_RELATED_SUBJECTS (``(subject) -> [subjects]``); without one,
    SUBJECT alone."""
    related = getattr(settings, "CUSTOS_LEDGER_RELATED_SUBJECTS", "")
    return sorted(set(import_string(related)(subject)) | {subject}) if related else [subject]


def entry_list(*, user=None, kind=None, subject=None, seq_from=None, seq_to=None):
    """Entries in sequence order, filtered by kind, exact subject and sequence range (inclusive).

    With USER, only those the user may read (``entries_visible_to``).
    """
    qs = LedgerEntry.objects.order_by("seq")
    if user is not None:
        qs = entries_visible_to(user, qs)
    if kind:
        qs = qs.filter(kind=kind)
    if subject:
        qs = qs.filter(subject=subject)
    if seq_from is not None:
        qs = qs.filter(seq__gte=seq_from)
    if seq_to is not None:
        qs = qs.filter(seq__lte=seq_to)
    return qs


def checkpoint_latest() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-tree_size").first()


def checkpoint_get(tree_size: int) -> Checkpoint | None:
    """The signed checkpoint of TREE_SIZE, or None (a report names the checkpoint it stands on)."""
    return Checkpoint.objects.filter(tree_size=tree_size).first()


def key_list() -> list[dict]:
    """Every key the ledger declared, with its status (active, retired, revoked) and where it began."""
    keys, active, revoked = {}, None, {}
    for entry in LedgerEntry.objects.filter(kind__in=KEY_KINDS).order_by("seq"):
        if entry.kind == KEY_REGISTERED:
            kid, vkey = entry.payload["key_id"], entry.payload["verifier_key"]
        elif entry.kind == KEY_ROTATED:
            kid, vkey = entry.payload["new_key_id"], entry.payload["new_verifier_key"]
        else:
            revoked[entry.payload["key_id"]] = entry.seq
            continue
        keys[kid] = {"key_id": kid, "verifier_key": vkey, "introduced_at": entry.seq}
        active = kid
    for kid, info in keys.items():
        info["status"] = "active" if kid == active else ("revoked" if kid in revoked else "retired")
        info["revoked_at"] = revoked.get(kid)
    return list(keys.values())


def entry_canonical(entry: LedgerEntry) -> bytes:
    """The signed bytes of ENTRY as stored (what its hash and signature cover)."""
    return canonical_json(entry.canonical_content())


def entry_evidence(entry: LedgerEntry, *, tree_size: int | None = None) -> dict:
    """ENTRY as a bundle item: signed bytes, hash, signature, key id, and optionally an inclusion proof."""
    item = {
        "seq": entry.seq,
        "canonical": b64(entry_canonical(entry)),
        "entry_hash": bytes(entry.entry_hash).hex(),
        "signature": b64(entry.signature),
        "key_id": entry.key_id,
    }
    if tree_size is not None:
        item["inclusion_proof"] = [h.hex() for h in tree.inclusion_proof(seq=entry.seq, tree_size=tree_size)]
    return item


def evidence_bundle(*, checkpoint: Checkpoint, subject: str | None = None, subjects=None) -> dict:
    """An evidence bundle at CHECKPOINT: every entry (a complete chain), or the entries about SUBJECTS with proofs.

    SUBJECT is the one-subject form of SUBJECTS. A subject bundle also carries the ledger's key
    entries (with their proofs), so the offline verifier can tell which key was active at each
    entry without trusting anything but the checkpoint's signer. Every header field is one the
    verifier checks: the origin, tree size and root are the signed checkpoint's, and ``keys``
    lists the keys the key entries up to the checkpoint declare.
    """
    wanted_subjects = sorted(set(subjects or ()) | ({subject} if subject else set()))
    size = checkpoint.tree_size
    entries = LedgerEntry.objects.filter(seq__lt=size).order_by("seq")
    if not wanted_subjects:
        items = [entry_evidence(e) for e in entries.iterator(chunk_size=2000)]
    else:
        wanted = list((entries.filter(subject__in=wanted_subjects) | entries.filter(kind__in=KEY_KINDS)).order_by("seq"))
        proofs = tree.inclusion_proofs(seqs=[e.seq for e in wanted], tree_size=size)
        items = [{**entry_evidence(e), "inclusion_proof": [h.hex() for h in proofs[e.seq]]} for e in wanted]
    keys = []
    for entry in entries.filter(kind__in=[KEY_REGISTERED, KEY_ROTATED]):
        keys.append(entry.payload["verifier_key" if entry.kind == KEY_REGISTERED else "new_verifier_key"])
    bundle = {
        "format": BUNDLE_FORMAT,
        "origin": settings.CUSTOS_LOG_ORIGIN,
        "complete": not wanted_subjects,
        "tree_size": size,
        "root_hash": bytes(checkpoint.root_hash).hex(),
        "checkpoint": checkpoint.note,
        "keys": keys,
        "entries": items,
    }
    if wanted_subjects:
        bundle["subjects"] = wanted_subjects
    return bundle


def entry_inclusion(entry: LedgerEntry) -> tuple[bool | None, str]:
    """Verify ENTRY's inclusion in the latest checkpoint: (True/False, or None if not yet covered; why).

    The leaf is recomputed from the entry's stored fields, the checkpoint's signature is checked
    with the ledger's declared key, and the proof is read from the stored tree: a change to any
    of them shows here.
    """
    checkpoint = checkpoint_latest()
    if checkpoint is None or entry.seq >= checkpoint.tree_size:
        return None, "not yet covered by a checkpoint"
    keys = {k["key_id"]: k["verifier_key"] for k in key_list()}
    try:
        body = open_checkpoint(checkpoint.note, [parse_verifier_key(keys[checkpoint.key_id])])
        proof = tree.inclusion_proof(seq=entry.seq, tree_size=checkpoint.tree_size)
    except (KeyError, NoteError, tree.ProofError) as exc:
        return False, f"checkpoint {checkpoint.tree_size} cannot be checked: {exc}"
    leaf = merkle.leaf_hash(entry_canonical(entry))
    if merkle.verify_inclusion(leaf, entry.seq, body.size, proof, body.root):
        return True, f"included in the signed checkpoint of size {body.size}"
    return False, f"NOT included in the signed checkpoint of size {body.size}: the entry or the tree was altered"


def queued_count() -> tuple[int, datetime | None]:
    """How many committed entries wait to be sealed, and when the oldest was queued."""
    stats = QueuedEntry.objects.aggregate(n=Count("id"), oldest=Min("queued_at"))
    return stats["n"], stats["oldest"]
