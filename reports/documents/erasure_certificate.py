"""The erasure certificate of one GDPR Art. 17 request, as the ledger stood at a checkpoint.

What it says comes from the request's own ledger entries the checkpoint covers (its dates, the
state each entry moved it to, the absence proof ``erasure.completed`` recorded, the key
destructions the registry ledgered, the review decisions) and, for names and texts the ledger
keeps only as hashes (a legal hold's justification, a recipient's confirmation), from the rows
``governance.selectors.erasure.erasure_certificate_facts`` reads. It carries the evidence bundle
of those entries. It never shows the person: neither their id nor its keyed hash is read here.
"""

from __future__ import annotations

from audit.selectors import entry_list, evidence_bundle
from governance.rules.kinds import GovernanceKind
from governance.selectors.erasure import erasure_certificate_facts

from ..pdf import evidence_bundle_attachment
from ..rules.documents import DocumentKind
from . import blocks as b
from .evidence import iso
from .reader import reader

# The state each entry of a request moves it to (erasure.completed says its own in its payload).
STATE_AFTER = {
    GovernanceKind.ERASURE_REQUESTED: "received",
    GovernanceKind.ERASURE_IDENTITY_VERIFIED: "identity verified",
    GovernanceKind.ERASURE_PLANNED: "planned",
    GovernanceKind.ERASURE_PLAN_REJECTED: "identity verified",
    GovernanceKind.ERASURE_PLAN_APPROVED: "plan approved",
    GovernanceKind.ERASURE_EXECUTION_STARTED: "executing",
    GovernanceKind.ERASURE_EXECUTION_FAILED: "error",
    GovernanceKind.ERASURE_REFUSED: "refused",
    GovernanceKind.ERASURE_BACKUPS_UNREADABLE: "completed backups",
}


class NotCompleted(ValueError):
    """The checkpoint covers no completion of the request: there is nothing to certify."""


def _state(entries) -> str:
    state = "received"
    for e in entries:
        if e.kind == GovernanceKind.ERASURE_COMPLETED:
            state = str(e.payload.get("state", "")).replace("_", " ")
        elif e.kind in STATE_AFTER:
            state = STATE_AFTER[e.kind]
    return state


def build(request_id: str, subject: str, *, user, checkpoint):
    user = reader(user)
    facts = erasure_certificate_facts(user=user, pk=int(request_id))
    request = facts["request"]
    # The certificate's reader was checked by the selector (an erasure reader acts across units, as
    # the officer does): the entries are read whole, so the officer's certificate and the system's
    # rerender show the same key destructions of other units' snapshots.
    covered = entry_list(seq_to=checkpoint.tree_size - 1)
    entries = list(covered.filter(subject=request.ledger_subject))
    completed = next((e for e in entries if e.kind == GovernanceKind.ERASURE_COMPLETED), None)
    if completed is None:
        raise NotCompleted(f"{request.reference} was not completed by checkpoint {checkpoint.tree_size}: "
                           "a certificate is issued for a completed request.")
    proof = completed.payload
    first = {}
    for e in entries:
        first.setdefault(e.kind, e)
    received = first[GovernanceKind.ERASURE_REQUESTED].payload
    extended = [e for e in entries if e.kind == GovernanceKind.ERASURE_EXTENDED]
    due_at = iso(request.due_at)
    met = iso(completed.created_at) <= due_at
    decided = {e.payload["model_version_id"]: e for e in entries if e.kind == GovernanceKind.ERASURE_REVIEW_DECIDED}
    closed = {e.payload["dataset_version_id"]: e for e in entries if e.kind == GovernanceKind.ERASURE_RECIPIENT_CLOSED}
    backups = first.get(GovernanceKind.ERASURE_BACKUPS_UNREADABLE)

    by_predecessor = {s.predecessor_id: s for s in facts["snapshots"]}
    predecessor_subjects = sorted(s.predecessor.ledger_subject for s in facts["snapshots"])
    successor_subjects = sorted(s.successor.ledger_subject for s in facts["snapshots"] if s.successor_id)
    destructions = {e.subject: e for e in covered.filter(kind=GovernanceKind.SNAPSHOT_KEY_DESTROYED,
                                                         subject__in=predecessor_subjects)}
    hold_subjects = sorted(h.ledger_subject for h in facts["legal_holds"])
    hold_entries = list(covered.filter(subject__in=hold_subjects))

    overview = [b.facts(
        ("Reference", request.reference), ("Ground", received.get("ground", request.get_ground_display())),
        ("Received", received.get("received_at", "")), ("First deadline", iso(request.first_due_at)),
        ("Extended", "; ".join(f"by {e.payload.get('months')} month(s) at {iso(e.created_at)}" for e in extended)
         or "no"),
        ("Due", due_at), ("Completed", iso(completed.created_at)),
        ("Deadline met", "yes" if met else "no"), ("State", _state(entries)),
        ("Outcome", request.outcome),
    )]

    snapshot_rows, hash_rows, key_rows = [], [], []
    for s in proof.get("snapshots", []):
        es = by_predecessor.get(s["predecessor_id"])
        name = f"{es.predecessor.dataset.name}@{es.predecessor.version}" if es else str(s["predecessor_id"])
        action = "kept under legal hold" if s["kept"] else ("redacted" if s["successor_id"] else "nothing to rewrite")
        snapshot_rows.append([name, action, s["rows_removed"], s["verification"]])
        hash_rows.append([name, "predecessor (original)", s["predecessor_sha256"]])
        if s["successor_sha256"]:
            hash_rows.append([name, "successor (redacted)", s["successor_sha256"]])
        destroyed = destructions.get(es.predecessor.ledger_subject) if es else None
        if s["key_destroyed_at"] or destroyed:
            key_rows.append([name, s["key_destroyed_at"] or iso(destroyed.created_at),
                             destroyed.seq if destroyed else "—"])
    found = [b.table(["Snapshot", "Action", "Rows removed", "Verification"], snapshot_rows, numeric=[2],
                     title="Stored snapshots that held the person"),
             b.table(["Snapshot", "File", "SHA-256"], hash_rows, dense=True,
                     title="Their contents' SHA-256 before and after")] if snapshot_rows \
        else [b.text("No stored snapshot held the person.")]
    if key_rows:
        found.append(b.table(["Snapshot", "Old data key destroyed", "Ledger seq"], key_rows, numeric=[2],
                             title="Data keys destroyed (the predecessors no longer decrypt)"))
    found.append(b.facts(
        ("Backups", f"unreadable since {backups.payload.get('unreadable_since')} (master key rotated after the last "
                    "key destruction)" if backups else
         "database backups still hold the destroyed wrapped keys under the master key of their day until the "
         "master key is rotated"),
        title="Backups"))

    review_rows = []
    for r in facts["reviews"]:
        d = decided.get(r.model_version_id)
        review_rows.append([f"{r.model_version.model.name} {r.model_version.version}",
                            d.payload["decision"] if d else "open", r.decided_by.username if d and r.decided_by else "",
                            iso(d.created_at) if d else "", d.seq if d else "—"])
    found.append(b.table(["Model version", "Decision", "By", "Decided", "Ledger seq"], review_rows, numeric=[4],
                         title="Model versions trained on the affected data, under review") if review_rows
                 else b.text("No model version was trained on the affected data."))
    hold_rows = [[h.pk, h.get_ground_display(), h.justification, h.review_on.isoformat(),
                  h.recorded_by.username if h.recorded_by else "", h.confirmed_by.username if h.confirmed_by else "",
                  iso(h.confirmed_at)] for h in facts["legal_holds"]]
    if hold_rows:
        found.append(b.table(["Hold", "Ground (Art. 17(3))", "Justification", "Review on", "Recorded by",
                              "Confirmed by", "Confirmed"], hold_rows, numeric=[0],
                             title="Legal-hold exceptions"))
    task_rows = []
    for t in facts["recipient_tasks"]:
        c = closed.get(t.dataset_version_id)
        task_rows.append([f"{t.dataset_version.dataset.name}@{t.dataset_version.version}", t.storage,
                          t.what_was_done if c else "open", iso(c.created_at) if c else "", c.seq if c else "—"])
    if task_rows:
        found.append(b.table(["Copy outside Custos", "Storage", "What the owner did", "Confirmed", "Ledger seq"],
                             task_rows, numeric=[4], title="Recipient tasks (GDPR Art. 19)"))

    verification = [b.facts(
        ("Index entries left", proof.get("index_entries")),
        ("Index entries kept under a legal hold", proof.get("index_entries_kept_under_hold")),
        ("Successors holding the person", proof.get("successors_holding_person")),
        ("Predecessors that still decrypt", proof.get("predecessors_readable")),
        ("Rows removed", proof.get("rows_removed")), ("Checked at", proof.get("checked_at")),
        ("Recorded", f"ledger seq {completed.seq} ({completed.kind})"),
        title="Absence proof")]

    bundle_entries = entries + list(destructions.values()) + hold_entries
    ledger = [b.table(["Seq", "Time", "Kind", "Subject", "By"],
                      [[e.seq, iso(e.created_at), e.kind, e.subject, e.actor or "the system"]
                       for e in sorted(bundle_entries, key=lambda e: e.seq)], numeric=[0], dense=True)]
    subjects = sorted({request.ledger_subject, *predecessor_subjects, *successor_subjects, *hold_subjects})
    bundle = evidence_bundle(checkpoint=checkpoint, subjects=subjects)

    sections = [
        {"anchor": "request", "title": "The request", "blocks": overview},
        {"anchor": "found", "title": "What was found and done", "blocks": found},
        {"anchor": "verification", "title": "Verification", "blocks": verification},
        {"anchor": "ledger", "title": "Ledger entries", "blocks": ledger},
    ]
    metadata = b.metadata_for(DocumentKind.ERASURE_CERTIFICATE, title=f"Erasure certificate: {request.reference}",
                              subject=request.reference,
                              custos_ids=(subject, f"audit.checkpoint:{checkpoint.tree_size}"), author="Custos")
    context = {"contents": [{"anchor": s["anchor"], "title": s["title"]} for s in sections], "sections": sections,
               "request": request, "checkpoint": checkpoint, "deadline_met": met,
               "checkpoint_root": bytes(checkpoint.root_hash).hex()}
    return context, metadata, [evidence_bundle_attachment(bundle)]
