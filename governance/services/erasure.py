"""The erasure workflow (GDPR Art. 17) the Data Protection Officer runs, end to end.

Each entry point locks the request, asks ``governance.rules.erasure`` whether the step is
allowed, writes the change and its ledger entry in one transaction. The person is known only
by the keyed hash of their normalised id, computed once at intake from the id typed there;
neither the id nor the hash ever goes into a ledger payload, a log line, an error or an answer.

Execution (``erasure_run``, on a worker) takes one step per transaction for each snapshot —
write the redacted successor under a new data key, verify it, commit it (the subject index
moves to it), destroy the predecessor's data key — asking ``rules.next_step`` before each, so a
crash anywhere and a re-run finish the job, and ``rules.check_destroy`` inside the transaction
that destroys a key: no key is destroyed without a committed, verified successor.
"""

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.canonical import canonical_json
from audit.models import LedgerEntry
from audit.services import ledger_append
from config.errors import Conflict
from config.tasks import enqueue_on_commit

from .. import storage
from ..gates.results import redact_rows
from ..models import (
    DatasetVersion,
    ErasureRequest,
    ErasureReview,
    ErasureSnapshot,
    GateRun,
    LegalHold,
    RecipientTask,
    ReleaseRequest,
    SnapshotKey,
    SubjectIndexEntry,
)
from ..rules import erasure as rules
from ..rules.erasure import Action, State, Step
from ..rules.kinds import GovernanceKind
from ..rules.releases import State as ReleaseState
from ..selectors import erasure as selectors
from ..selectors.snapshots import snapshot_source
from ..storage.subjects import index_key, normalise_subject_id, subject_key
from .files import remove_on_rollback
from .guards import recorded_user, require
from .registry import _snapshot_key_destroy
from .releases import _release_revoke

logger = logging.getLogger(__name__)

RUN_TASK = "governance.erasure_run"


class ErasureConflict(Conflict):
    """The erasure request collides with the state of things (an open request, a busy snapshot)."""


def _digest(value) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _iso(moment) -> str:
    return rules._iso(moment)


def _single_officer() -> bool:
    return settings.CUSTOS_ERASURE_SINGLE_OFFICER


def _lock(request: ErasureRequest) -> ErasureRequest:
    return ErasureRequest.objects.select_for_update().get(pk=request.pk)


def _move(request: ErasureRequest, action, **fields) -> State:
    new = rules.transition(request.state, action, reference=request.reference)
    request.state = new
    for name, value in fields.items():
        setattr(request, name, value)
    if new in rules.FINAL_STATES:
        request.closed_at = timezone.now()
        fields["closed_at"] = request.closed_at
    request.save(update_fields=["state", *fields])
    return new


def _ledger(kind, request, payload, actor):
    return ledger_append(
        kind=kind, subject=request.ledger_subject, payload={"reference": request.reference, **payload}, actor=actor
    )


def _named(actor, what):
    if actor is None:
        raise ValidationError(f"A named officer {what} (give --actor): the system cannot.")


# --- intake -------------------------------------------------------------------------------------


def subject_key_of(subject_id) -> str:
    """The keyed hash of SUBJECT_ID as the subject index computes it; refuse an empty id.

    The refusal never quotes the id.
    """
    if subject_id is None or not normalise_subject_id(subject_id):
        raise ValidationError({"subject_id": "The data subject's id is empty (after trimming white space)."})
    return subject_key(subject_id)


@transaction.atomic(durable=True)
def erasure_request_record(*, subject_id, ground: str, received_at=None, actor) -> ErasureRequest:
    """Record an erasure request for the person SUBJECT_ID on Art. 17(1) GROUND, received at RECEIVED_AT.

    Only the keyed hash of the normalised id is kept. A second open request for the same person
    is a 409 that names the open request's reference.
    """
    require(actor, "governance.add_erasurerequest", what="record erasure requests")
    key = subject_key_of(subject_id)
    try:
        ground = rules.Ground(ground)
    except ValueError:
        raise ValidationError({"ground": "The ground is one of Art. 17(1)(a)-(f): a, b, c, d, e or f."}) from None
    now = timezone.now()
    received_at = received_at or now
    if timezone.is_naive(received_at) or received_at > now:
        raise ValidationError({"received_at": "The time of receipt is timezone-aware and not in the future."})
    earlier = list(ErasureRequest.objects.select_for_update().filter(subject_key=key).values_list("reference", "state"))
    try:
        rules.check_not_duplicate(earlier)
    except rules.ErasureRefused as exc:
        raise ErasureConflict(str(exc)) from None
    year = received_at.year
    last = (
        ErasureRequest.objects.select_for_update().filter(reference__startswith=f"{rules.REFERENCE_PREFIX}-{year:04d}-")
        .order_by("-recorded_at", "-pk").values_list("reference", flat=True).first()
    )
    deadline = rules.deadline(received_at)
    try:
        with transaction.atomic():
            request = ErasureRequest.objects.create(
                reference=rules.next_reference(year=year, last=last), ground=ground, subject_key=key,
                received_at=received_at, first_due_at=deadline.first_due_at, due_at=deadline.due_at,
                recorded_by=recorded_user(actor),
            )
    except IntegrityError:
        raise ErasureConflict("Another erasure request was recorded at the same moment; try again.") from None
    _ledger(GovernanceKind.ERASURE_REQUESTED, request, {
        "ground": ground.article, "received_at": _iso(received_at), "due_at": _iso(request.due_at),
    }, actor)
    return request


@transaction.atomic(durable=True)
def erasure_identity_verify(*, request, evidence_reference: str, verified_at=None, actor) -> ErasureRequest:
    """Record that ACTOR verified the requester's identity at VERIFIED_AT, with where the evidence is kept."""
    require(actor, "governance.verify_erasurerequest", what="verify the identity of erasure requesters")
    _named(actor, "verifies an identity")
    request = _lock(request)
    now = timezone.now()
    verified_at = verified_at or now
    rules.transition(request.state, Action.VERIFY_IDENTITY, reference=request.reference)
    evidence = rules.check_identity_verification(
        received_at=request.received_at, verified_by=actor.pk, verified_at=verified_at,
        evidence_reference=evidence_reference, now=now,
    )
    _move(request, Action.VERIFY_IDENTITY, verified_by=recorded_user(actor), verified_at=verified_at,
          evidence_reference=evidence)
    _ledger(GovernanceKind.ERASURE_IDENTITY_VERIFIED, request, {
        "verified_by": actor.pk, "verified_at": _iso(verified_at),
        "evidence_reference_sha256": hashlib.sha256(evidence.encode()).hexdigest(),
    }, actor)
    return request


@transaction.atomic(durable=True)
def erasure_extend(*, request, months: int, reason: str, subject_notified_at, actor) -> ErasureRequest:
    """Extend the deadline by MONTHS (Art. 12(3)), recorded — and the person told — before the first deadline."""
    require(actor, "governance.extend_erasurerequest", what="extend erasure deadlines")
    request = _lock(request)
    new = rules.check_extension(
        state=request.state, received_at=request.received_at, extensions=request.extensions, months=months,
        reason=reason, subject_notified_at=subject_notified_at, now=timezone.now(), reference=request.reference,
    )
    request.extension_months = new.extended_months
    request.extension_reason = "\n".join(filter(None, [request.extension_reason, reason.strip()]))
    request.extension_recorded_at = timezone.now()
    request.extension_notified_at = subject_notified_at
    request.due_at = new.due_at
    request.save(update_fields=["extension_months", "extension_reason", "extension_recorded_at",
                                "extension_notified_at", "due_at"])
    _ledger(GovernanceKind.ERASURE_EXTENDED, request, {
        "months": months, "due_at": _iso(new.due_at), "subject_notified_at": _iso(subject_notified_at),
        "reason_sha256": hashlib.sha256(reason.encode()).hexdigest(),
    }, actor)
    return request


@transaction.atomic(durable=True)
def erasure_refuse(*, request, ground: str, reason: str, supervisory_authority: str = "", actor) -> ErasureRequest:
    """Refuse REQUEST (Art. 12(4)/(5)): the notice names the ground, the reason and the complaint route."""
    require(actor, "governance.refuse_erasurerequest", what="refuse erasure requests")
    request = _lock(request)
    rules.transition(request.state, Action.REFUSE, reference=request.reference)
    refusal = rules.refusal(reference=request.reference, ground=ground, reason=reason,
                            supervisory_authority=supervisory_authority)
    _move(request, Action.REFUSE, refusal_ground=refusal.ground.value, outcome=refusal.notice)
    _ledger(GovernanceKind.ERASURE_REFUSED, request, {
        "ground": refusal.ground.value, "notice_sha256": hashlib.sha256(refusal.notice.encode()).hexdigest(),
    }, actor)
    return request


# --- the plan -----------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def erasure_plan(*, request, actor) -> ErasureRequest:
    """Find the person through the subject index (no snapshot is opened) and record the plan."""
    require(actor, "governance.plan_erasurerequest", what="plan erasures")
    request = _lock(request)
    rules.transition(request.state, Action.PLAN, reference=request.reference)
    plan = rules.plan(reference=request.reference, discovery=selectors.discovery(request),
                      holds=selectors.holds_for(request), now=timezone.now())
    data = plan.as_json()
    _move(request, Action.PLAN, plan=data, plan_sha256=_digest(data), planned_by=recorded_user(actor),
          planned_at=timezone.now(), approved_by=None, approved_at=None, error="")
    _ledger(GovernanceKind.ERASURE_PLANNED, request, {
        "plan_sha256": request.plan_sha256, "snapshots": len(plan.snapshots), "rows_to_remove": plan.rows_to_remove,
        "recipient_tasks": len(plan.recipient_tasks), "reviews": len(plan.reviews), "outcome": plan.outcome.value,
    }, actor)
    return request


@transaction.atomic(durable=True)
def erasure_plan_reject(*, request, reason: str, actor) -> ErasureRequest:
    """Send the plan back (the facts changed, or it is wrong): it is planned again and approved again."""
    require(actor, "governance.approve_erasurerequest", what="approve erasure plans")
    request = _lock(request)
    rules._justification(reason, "Sending a plan back")
    _move(request, Action.REJECT_PLAN)
    _ledger(GovernanceKind.ERASURE_PLAN_REJECTED, request, {
        "plan_sha256": request.plan_sha256, "reason_sha256": hashlib.sha256(reason.encode()).hexdigest(),
    }, actor)
    return request


@transaction.atomic(durable=True)
def erasure_plan_approve(*, request, plan_sha256: str | None = None, actor) -> ErasureRequest:
    """Approve the recorded plan: a second officer, neither the recorder nor the identity verifier.

    PLAN_SHA256, when given, must be the plan the approver read (a plan re-made meanwhile is refused).
    """
    require(actor, "governance.approve_erasurerequest", what="approve erasure plans")
    _named(actor, "approves an erasure plan")
    request = _lock(request)
    rules.transition(request.state, Action.APPROVE_PLAN, reference=request.reference)
    if plan_sha256 is not None and plan_sha256 != request.plan_sha256:
        raise ErasureConflict(f"The plan of {request.reference} changed since it was read; read it again.")
    rules.check_plan_approval(recorded_by=request.recorded_by_id, verified_by=request.verified_by_id,
                              approved_by=actor.pk, single_officer=_single_officer())
    _move(request, Action.APPROVE_PLAN, approved_by=recorded_user(actor), approved_at=timezone.now())
    _ledger(GovernanceKind.ERASURE_PLAN_APPROVED, request, {"plan_sha256": request.plan_sha256}, actor)
    return request


# --- execution ----------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def erasure_execute(*, request, actor) -> ErasureRequest:
    """Start (or resume after an error) the approved plan's execution on a worker."""
    require(actor, "governance.execute_erasurerequest", what="execute erasures")
    request = _lock(request)
    if request.state == State.PLAN_APPROVED:
        action = Action.START_EXECUTION
    elif request.state == State.ERROR:
        action = Action.RESUME
    elif request.state == State.EXECUTING:
        action = None  # a stopped worker: queue the run again, the steps finish the job
    else:
        raise rules.TransitionRefused(request.state, Action.START_EXECUTION, reference=request.reference)
    if action is not None:
        _move(request, action, error="")
    plan = request.approved_plan()
    for s in plan.snapshots:
        ErasureSnapshot.objects.get_or_create(
            request=request, predecessor_id=s.dataset_version_id,
            defaults={"action": s.action, "rows_to_remove": s.rows_to_remove},
        )
    for t in plan.recipient_tasks:
        RecipientTask.objects.get_or_create(
            request=request, dataset_version_id=t.dataset_version_id,
            defaults={"storage": t.storage, "message": t.message},
        )
    _ledger(GovernanceKind.ERASURE_EXECUTION_STARTED, request, {
        "plan_sha256": request.plan_sha256, "resumed": action != Action.START_EXECUTION,
    }, actor)
    enqueue_on_commit(RUN_TASK, request.pk)
    return request


def erasure_run(*, request_id: int, progress=None) -> str:
    """Run the execution of request REQUEST_ID (the worker's task); return the request's state.

    One transaction per step. A failure records the request in ``error`` with a message that
    names the snapshot and the step, never the data; ``erasure_execute`` resumes it. PROGRESS,
    if given, is called with one line of text before each step (the command prints it).
    """
    request = ErasureRequest.objects.get(pk=request_id)
    if request.state != State.EXECUTING:
        return request.state
    say = progress or (lambda line: None)
    step = None
    es = None
    try:
        for es in ErasureSnapshot.objects.filter(request=request, done=False, kept=False).select_related("predecessor"):
            discarded = 0
            while True:
                step = _snapshot_next(es)
                if step is None:
                    break
                if step == Step.DISCARD_SUCCESSOR and es.verification == rules.Verification.FAILED:
                    discarded += 1
                    if discarded > 1:  # written twice, failed twice: a person must look
                        raise rules.ProgressInconsistent("The successor failed its verification twice.")
                say(f"{request.reference}: snapshot {es.predecessor_id}: {step}")
                _STEPS[step](es)
                es.refresh_from_db()
        step, es = "reviews", None
        _reviews_open(request)
        step = "completion"
        return _completion_check(request)
    except Exception as exc:  # the worker records the stop, whatever it was, and the request resumes
        where = f"snapshot {es.predecessor_id}, step {step}" if es is not None else f"step {step}"
        message = f"Execution stopped at {where}: {type(exc).__name__}. Run it again to resume."
        logger.warning("Erasure %s stopped at %s (%s)", request.reference, where, type(exc).__name__)
        _fail(request_id, message)
        return State.ERROR


@transaction.atomic(durable=True)
def _fail(request_id: int, message: str) -> None:
    request = ErasureRequest.objects.select_for_update().get(pk=request_id)
    if request.state != State.EXECUTING:
        return
    _move(request, Action.FAIL, error=message)
    _ledger(GovernanceKind.ERASURE_EXECUTION_FAILED, request, {"error": message}, None)


def _key_live(dataset_version_id: int) -> bool:
    return SnapshotKey.objects.filter(dataset_version_id=dataset_version_id, wrapped_key__isnull=False).exists()


def _snapshot_next(es: ErasureSnapshot):
    """The next step for ES, or None when it is done, kept or has to wait."""
    request = es.request
    if not es.successor_written and not es.predecessor_key_destroyed:
        # Nothing written yet: ask again what the approved plan allows with the facts as they are now.
        approved = next(s for s in request.approved_plan().snapshots if s.dataset_version_id == es.predecessor_id)
        dv = es.predecessor
        key = SnapshotKey.objects.filter(dataset_version=dv).first()
        current = rules.StoredSnapshot(
            dataset_version_id=dv.pk, dataset_id=dv.dataset_id,
            row_count=max(dv.row_count or 0, es.rows_to_remove or 1), subject_rows=max(es.rows_to_remove, 1),
            key_state=rules.KeyState.LIVE if key is not None and key.wrapped_key is not None else rules.KeyState.DESTROYED,
            key_destroyed_at=key.destroyed_at if key is not None else None,
            gate_runs_in_use=tuple(_busy_runs(dv.pk)),
        )
        now = rules.execution_action(approved, current, holds=selectors.holds_for(request),
                                     reference=request.reference, now=timezone.now())
        if now.action == rules.SnapshotAction.SKIP_ALREADY_DESTROYED:
            _snapshot_mark(es, done=True, note=now.reason, unindex=True)
            return None
        if now.action == rules.SnapshotAction.KEEP_UNDER_HOLD:
            _snapshot_mark(es, kept=True, note=now.reason)
            return None
        if now.action == rules.SnapshotAction.WAIT_FOR_GATE_RUN:
            _snapshot_mark(es, note=now.reason)
            return None
    elif not es.predecessor_key_destroyed and not _key_live(es.predecessor_id):
        _snapshot_record_destroyed_outside(es)  # someone destroyed it outside the workflow
        es.refresh_from_db()
    step = rules.next_step(es.progress)
    if step == Step.DONE:
        if not es.done:
            _snapshot_mark(es, done=True)
        return None
    return step


def _busy_runs(dataset_version_id):
    return GateRun.objects.unrestricted().filter(
        dataset_version_id=dataset_version_id, status__in=[GateRun.Status.QUEUED, GateRun.Status.RUNNING]
    ).values_list("pk", flat=True)


@transaction.atomic(durable=True)
def _snapshot_mark(es, *, done=False, kept=False, note="", unindex=False):
    es = ErasureSnapshot.objects.select_for_update().get(pk=es.pk)
    if unindex:  # unreadable already: only its index entry still ties the person to it
        SubjectIndexEntry.objects.filter(subject_key=es.request.subject_key, dataset_version_id=es.predecessor_id).delete()
    es.done, es.kept, es.note = es.done or done, es.kept or kept, note or es.note
    es.save(update_fields=["done", "kept", "note"])
    if kept:
        _ledger(GovernanceKind.ERASURE_SNAPSHOT_KEPT, es.request, {"dataset_version_id": es.predecessor_id}, None)


@transaction.atomic(durable=True)
def _snapshot_record_destroyed_outside(es):
    es = ErasureSnapshot.objects.select_for_update().get(pk=es.pk)
    key = SnapshotKey.objects.filter(dataset_version_id=es.predecessor_id).first()
    es.predecessor_key_destroyed = True
    es.key_destroyed_at = key.destroyed_at if key is not None else timezone.now()
    es.note = "The predecessor's data key was destroyed outside the erasure steps."
    es.save(update_fields=["predecessor_key_destroyed", "key_destroyed_at", "note"])


def _successor_version_name(predecessor: DatasetVersion, reference: str) -> str:
    suffix = f"+{reference}"
    return predecessor.version[: 100 - len(suffix)] + suffix


def _step_write(es: ErasureSnapshot) -> None:
    """Write the redacted successor under a new data key; record it (file first, then the rows)."""
    from ..storage.redaction import redact_csv, redact_parquet, subject_positions  # pyarrow: only on a worker

    request, dv = es.request, es.predecessor
    source = snapshot_source(dv)
    positions = subject_positions(source, file_format=dv.file_format, subject_column=dv.subject_column,
                                  subject_key=request.subject_key, index_key=index_key())
    data_key = storage.new_data_key()
    rel = storage.new_snapshot_path()
    path = storage.storage_root() / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "xb") as dst:
            writer = storage.EncryptingWriter(dst, data_key)
            if dv.file_format == "csv":
                with source() as reader:
                    result = redact_csv(iter(lambda: reader.read(storage.CHUNK), b""), writer, positions=positions)
            else:
                result = redact_parquet(source, writer, positions=positions)
            writer.close()
        wrapped, master_key_id = storage.wrap_data_key(data_key)
        with transaction.atomic(durable=True):
            es = ErasureSnapshot.objects.select_for_update().get(pk=es.pk)
            if es.successor_written:  # another worker got here first
                path.unlink(missing_ok=True)
                return
            successor = DatasetVersion(
                dataset=dv.dataset, version=_successor_version_name(dv, request.reference), storage=dv.storage,
                file_format=dv.file_format, sha256=writer.result.sha256, size_bytes=writer.result.size,
                row_count=result.rows_read - result.rows_removed, schema=dv.schema, subject_column=dv.subject_column,
                personal_columns=dv.personal_columns, sensitive_columns=dv.sensitive_columns, stored_path=rel,
                created_by=None,
            )
            successor.save()
            remove_on_rollback(path)
            SnapshotKey.objects.create(dataset_version=successor, master_key_id=master_key_id, wrapped_key=wrapped)
            es.successor, es.successor_written = successor, True
            es.verification, es.verification_problems = rules.Verification.PENDING, []
            es.save(update_fields=["successor", "successor_written", "verification", "verification_problems"])
            _ledger(GovernanceKind.ERASURE_SUCCESSOR_WRITTEN, request, {
                "predecessor_id": dv.pk, "predecessor_sha256": dv.sha256, "successor_id": successor.pk,
                "successor_sha256": successor.sha256, "rows_read": result.rows_read,
                "rows_removed": result.rows_removed, "master_key_id": master_key_id,
            }, None)
    except BaseException:
        if not ErasureSnapshot.objects.filter(pk=es.pk, successor__stored_path=rel).exists():
            path.unlink(missing_ok=True)
        raise


def _step_verify(es: ErasureSnapshot) -> None:
    """Read the successor back under its own key: it decrypts, has the predecessor's schema, the
    expected rows, none of the person's, and every other person's rows as the predecessor's index says."""
    from ..storage.redaction import SnapshotInvalid, index_digest, read_successor  # pyarrow: only on a worker

    request, dv, successor = es.request, es.predecessor, es.successor
    problems = []
    try:
        source = snapshot_source(successor)
        digest = hashlib.sha256()
        with source() as reader:
            for chunk in iter(lambda: reader.read(storage.CHUNK), b""):
                digest.update(chunk)
        content = read_successor(source, file_format=successor.file_format, subject_column=successor.subject_column,
                                 subject_key=request.subject_key, index_key=index_key())
        names = [c["name"] for c in content.schema]
        schema_matches = (names == [c["name"] for c in dv.schema]) if dv.file_format == "csv" else (
            content.schema == dv.schema)
        facts = rules.SuccessorFacts(decrypts=True, row_count=content.row_count, subject_rows=content.subject_rows,
                                     schema_matches=schema_matches)
        if digest.hexdigest() != successor.sha256:
            problems.append("the successor's content does not match the SHA-256 recorded when it was written")
        expected = index_digest(SubjectIndexEntry.objects.filter(dataset_version=dv).exclude(
            subject_key=request.subject_key).values_list("subject_key", "row_count").iterator(chunk_size=50_000))
        if content.index_digest != expected:
            problems.append("the successor's rows of other people differ from the predecessor's index")
    except (storage.SnapshotUnreadable, SnapshotInvalid):
        facts = rules.SuccessorFacts(decrypts=False)
    check = rules.check_successor(predecessor_rows=dv.row_count, removed_rows=max(es.rows_to_remove, 1), facts=facts)
    problems = [*check.problems, *problems]
    verification = rules.Verification.FAILED if problems else check.verification
    with transaction.atomic(durable=True):
        es = ErasureSnapshot.objects.select_for_update().get(pk=es.pk)
        es.verification, es.verification_problems = verification, problems
        es.save(update_fields=["verification", "verification_problems"])
        _ledger(GovernanceKind.ERASURE_SUCCESSOR_VERIFIED, request, {
            "predecessor_id": dv.pk, "successor_id": successor.pk, "successor_sha256": successor.sha256,
            "verification": verification.value, "row_count": facts.row_count, "problems": problems,
        }, None)


@transaction.atomic(durable=True)
def _step_discard(es: ErasureSnapshot) -> None:
    """Remove a successor that failed verification (or is orphaned): its key, row and file."""
    es = ErasureSnapshot.objects.select_for_update(of=("self",)).select_related("successor", "request").get(pk=es.pk)
    successor = es.successor
    if successor is not None:
        rel = successor.stored_path
        es.successor = None
        SnapshotKey.objects.filter(dataset_version=successor).delete()
        SubjectIndexEntry.objects.filter(dataset_version=successor).delete()
    es.successor_written, es.verification = False, rules.Verification.PENDING
    es.save(update_fields=["successor", "successor_written", "verification"])
    if successor is not None:
        DatasetVersion.objects.filter(pk=successor.pk).delete()
        transaction.on_commit(lambda: storage.snapshot_remove(rel))
    done = es.predecessor_key_destroyed
    if done:
        es.done = True
        es.save(update_fields=["done"])
    _ledger(GovernanceKind.ERASURE_SUCCESSOR_DISCARDED, es.request, {
        "predecessor_id": es.predecessor_id, "successor_id": successor.pk if successor else None,
        "problems": es.verification_problems,
    }, None)


def _step_commit(es: ErasureSnapshot) -> None:
    """Make the verified successor the version the subject index points at, and remove the
    person's rows from the per-row figures of the gate runs on the predecessor — one transaction,
    so a crash leaves both undone or both done. The person's row positions are found first, by
    reading the predecessor (its key is destroyed only after this step)."""
    positions = _subject_positions_for_gate_runs(es)
    _commit(es, positions)


def _gate_runs_with_rows(dataset_version_id):
    return GateRun.objects.unrestricted().filter(
        dataset_version_id=dataset_version_id, result__isnull=False, result__has_key="explainability"
    )


def _subject_positions_for_gate_runs(es: ErasureSnapshot) -> list[int]:
    from ..storage.redaction import subject_positions  # pyarrow: only on a worker

    if not _gate_runs_with_rows(es.predecessor_id).exists():
        return []
    dv = es.predecessor
    return subject_positions(snapshot_source(dv), file_format=dv.file_format, subject_column=dv.subject_column,
                             subject_key=es.request.subject_key, index_key=index_key())


@transaction.atomic(savepoint=False)
def _gate_results_redact(es: ErasureSnapshot, positions) -> int:
    """Remove the rows at POSITIONS from the stored per-row figures (explained rows with their
    SHAP values, background sample) of every gate run on ES's predecessor; aggregates stay.
    One ledger entry per changed run: counts and the new result's SHA-256, never a position."""
    changed = 0
    if not positions:
        return changed
    for run in _gate_runs_with_rows(es.predecessor_id).select_for_update().order_by("pk"):
        new, removed = redact_rows(run.result, positions, reference=es.request.reference)
        if not removed["rows"]:
            continue
        run.result, run.result_digest = new, _digest(new)
        run.save(update_fields=["result", "result_digest"])
        ledger_append(kind=GovernanceKind.RESULT_REDACTED, subject=run.ledger_subject, payload={
            "run_id": run.pk, "request": es.request.reference, "rows_removed": removed["rows"],
            "explained_rows_removed": removed["explained_rows"], "background_rows_removed": removed["background_rows"],
            "result_sha256": run.result_digest,
        }, actor=None)
        changed += 1
    return changed


@transaction.atomic(durable=True)
def _commit(es: ErasureSnapshot, positions) -> None:
    es = ErasureSnapshot.objects.select_for_update(of=("self",)).select_related("request").get(pk=es.pk)
    if es.verification != rules.Verification.PASSED or es.successor_committed:
        raise rules.ProgressInconsistent("Only a verified, uncommitted successor is committed.")
    table = connection.ops.quote_name(SubjectIndexEntry._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (subject_key, dataset_version_id, row_count) "
            f"SELECT subject_key, %s, row_count FROM {table} WHERE dataset_version_id = %s AND subject_key <> %s",
            [es.successor_id, es.predecessor_id, es.request.subject_key],
        )
        moved = cursor.rowcount
    SubjectIndexEntry.objects.filter(dataset_version_id=es.predecessor_id).delete()
    es.successor_committed = True
    es.save(update_fields=["successor_committed"])
    runs = _gate_results_redact(es, positions)
    _ledger(GovernanceKind.ERASURE_SUCCESSOR_COMMITTED, es.request, {
        "predecessor_id": es.predecessor_id, "successor_id": es.successor_id, "index_entries": moved,
        "gate_results_redacted": runs,
    }, None)


@transaction.atomic(durable=True)
def _step_destroy(es: ErasureSnapshot) -> None:
    """Destroy the predecessor's data key: the one irreversible step, guarded by rules.check_destroy."""
    es = ErasureSnapshot.objects.select_for_update(of=("self",)).select_related("request", "predecessor", "successor").get(pk=es.pk)
    rules.check_destroy(es.progress)
    key = _snapshot_key_destroy(
        dataset_version=es.predecessor, reason=f"erasure {es.request.reference}", actor=None,
        facts={"erasure_request": es.request.reference, "successor_id": es.successor_id,
               "successor_sha256": es.successor.sha256},
    )
    es.predecessor_key_destroyed, es.key_destroyed_at, es.done = True, key.destroyed_at, True
    es.save(update_fields=["predecessor_key_destroyed", "key_destroyed_at", "done"])


_STEPS = {
    Step.WRITE_SUCCESSOR: _step_write,
    Step.VERIFY_SUCCESSOR: _step_verify,
    Step.DISCARD_SUCCESSOR: _step_discard,
    Step.COMMIT_SUCCESSOR: _step_commit,
    Step.DESTROY_PREDECESSOR_KEY: _step_destroy,
}


@transaction.atomic(durable=True)
def _reviews_open(request: ErasureRequest) -> None:
    for r in request.approved_plan().reviews:
        review, created = ErasureReview.objects.get_or_create(
            request=request, model_version_id=r.model_version_id, defaults={"message": r.message}
        )
        if created:
            _ledger(GovernanceKind.ERASURE_REVIEW_OPENED, request, {
                "model_version_id": r.model_version_id, "training_run_ids": list(r.training_run_ids),
                "release_ids": list(r.release_ids),
            }, None)


def _progress(request) -> rules.ExecutionProgress:
    snaps = list(ErasureSnapshot.objects.filter(request=request).values_list(
        "predecessor_id", "done", "kept", "successor_committed"))
    # A gate run's per-row figures are scrubbed in its snapshot's commit step and kept with a held one.
    committed = {pk for pk, done, _, committed in snaps if committed or done}
    held = {pk for pk, _, kept, _ in snaps if kept}
    gate_results = request.approved_plan().gate_results
    return rules.ExecutionProgress(
        snapshots_done=frozenset(pk for pk, done, _, _ in snaps if done),
        snapshots_kept=frozenset(held),
        gate_results_scrubbed=frozenset(g.gate_run_id for g in gate_results if g.dataset_version_id in committed),
        gate_results_kept=frozenset(g.gate_run_id for g in gate_results if g.dataset_version_id in held),
        reviews_opened=frozenset(ErasureReview.objects.filter(request=request).values_list("model_version_id", flat=True)),
        recipients_confirmed=frozenset(RecipientTask.objects.filter(request=request, closed_at__isnull=False)
                                       .values_list("dataset_version_id", flat=True)),
    )


def erasure_outstanding(request) -> tuple[str, ...]:
    """What an executing request still waits for (snapshots, reviews, recipients), in words."""
    return rules.completion(request.approved_plan(), _progress(request)).outstanding


@transaction.atomic(durable=True)
def _completion_check(request: ErasureRequest) -> str:
    request = _lock(request)
    if request.state != State.EXECUTING:
        return request.state
    done = rules.completion(request.approved_plan(), _progress(request))
    if done.action is None:
        return request.state
    proof = absence_proof(request)
    if proof["index_entries"] or proof["successors_holding_person"] or proof["predecessors_readable"]:
        raise rules.ProgressInconsistent("The absence check found the person after execution.")
    _move(request, done.action, completed_at=timezone.now(), absence_proof=proof,
          outcome=_outcome_text(request, proof))
    _ledger(GovernanceKind.ERASURE_COMPLETED, request, {"state": request.state, **proof}, None)
    return request.state


def absence_proof(request: ErasureRequest) -> dict:
    """Check, and say in counts and hashes, that the person is gone: the index finds nothing, each
    successor was verified to hold none of their rows, each predecessor fails to decrypt."""
    snapshots, readable, holding = [], 0, 0
    for es in ErasureSnapshot.objects.filter(request=request).select_related("predecessor", "successor"):
        try:
            snapshot_source(es.predecessor)
            decrypts = True
        except storage.SnapshotUnreadable:
            decrypts = False
        readable += decrypts and not es.kept
        holding += bool(es.successor_id) and es.verification != rules.Verification.PASSED
        snapshots.append({
            "predecessor_id": es.predecessor_id, "predecessor_sha256": es.predecessor.sha256,
            "successor_id": es.successor_id, "successor_sha256": es.successor.sha256 if es.successor_id else None,
            "rows_removed": es.rows_to_remove if es.successor_id else 0,
            "verification": es.verification, "predecessor_decrypts": decrypts, "kept": es.kept,
            "key_destroyed_at": _iso(es.key_destroyed_at) if es.key_destroyed_at else None,
        })
    kept = [s["predecessor_id"] for s in snapshots if s["kept"]]
    found = SubjectIndexEntry.objects.filter(subject_key=request.subject_key)
    return {
        # Entries left only in snapshots a confirmed legal hold keeps are not a failure: they are said.
        "index_entries": found.exclude(dataset_version_id__in=kept).count(),
        "index_entries_kept_under_hold": found.filter(dataset_version_id__in=kept).count(),
        "snapshots": snapshots,
        "successors_holding_person": holding,
        "predecessors_readable": readable,
        "rows_removed": sum(s["rows_removed"] for s in snapshots),
        "reviews": sorted(ErasureReview.objects.filter(request=request).values_list("model_version_id", flat=True)),
        "recipient_tasks": RecipientTask.objects.filter(request=request).count(),
        "checked_at": _iso(timezone.now()),
    }


def _outcome_text(request, proof) -> str:
    redacted = sum(1 for s in proof["snapshots"] if s["successor_id"])
    kept = sum(1 for s in proof["snapshots"] if s["kept"])
    if not proof["snapshots"] and not proof["recipient_tasks"]:
        return (f"Erasure request {request.reference}: nothing Custos stores held the person in its indexed "
                "snapshots; nothing was erased.")
    text = (f"Erasure request {request.reference}: {redacted} snapshot(s) rewritten without the person "
            f"({proof['rows_removed']} row(s) removed) and their old data keys destroyed")
    if kept:
        text += f"; {kept} kept under legal hold"
    if proof["recipient_tasks"]:
        text += f"; {proof['recipient_tasks']} recipient(s) confirmed"
    return text + "."


# --- reviews, recipients ------------------------------------------------------------------------


@transaction.atomic(durable=True)
def erasure_review_decide(*, review: ErasureReview, decision: str, justification: str, actor) -> ErasureReview:
    """Decide the erasure review of a model version: retrain, retain (with a justification) or retire.

    Retiring revokes the version's approved releases through the release service."""
    review = ErasureReview.objects.select_for_update(of=("self",)).select_related("request", "model_version__model").get(pk=review.pk)
    require(actor, "governance.decide_erasurereview", review.model_version.model.business_unit,
            what="decide erasure reviews")
    effect = rules.check_review_decision(review.as_rule(), decision=decision, justification=justification)
    review.state, review.decision, review.justification = rules.ReviewState.DECIDED, decision, justification.strip()
    review.decided_by, review.decided_at = recorded_user(actor), timezone.now()
    review.save(update_fields=["state", "decision", "justification", "decided_by", "decided_at"])
    revoked = []
    if effect.revoke_releases:
        for release in ReleaseRequest.objects.unrestricted().filter(model_version=review.model_version,
                                                                   state=ReleaseState.APPROVED):
            _release_revoke(release=release, actor=None, justification=(
                f"Retired after erasure review ({review.request.reference}): {justification.strip()}"))
            revoked.append(release.pk)
    _ledger(GovernanceKind.ERASURE_REVIEW_DECIDED, review.request, {
        "model_version_id": review.model_version_id, "decision": review.decision, "revoked_releases": revoked,
        "justification_sha256": hashlib.sha256(justification.encode()).hexdigest(),
    }, actor)
    return review


def recipient_task_close(*, task: RecipientTask, what_was_done: str, actor) -> RecipientTask:
    """The owner of an external copy says what they did; the request completes when all are closed."""
    with transaction.atomic(durable=True):
        require(actor, "governance.close_recipienttask", what="close recipient tasks")
        task = RecipientTask.objects.select_for_update(of=("self",)).select_related("request").get(pk=task.pk)
        if task.closed_at is not None:
            raise ErasureConflict(f"This recipient task of {task.request.reference} is closed already.")
        text = rules._justification(what_was_done, "Closing a recipient task")
        task.closed_by, task.closed_at, task.what_was_done = recorded_user(actor), timezone.now(), text
        task.save(update_fields=["closed_by", "closed_at", "what_was_done"])
        _ledger(GovernanceKind.ERASURE_RECIPIENT_CLOSED, task.request, {
            "dataset_version_id": task.dataset_version_id,
            "what_was_done_sha256": hashlib.sha256(text.encode()).hexdigest(),
        }, actor)
    _completion_check(task.request)
    return task


# --- backups ------------------------------------------------------------------------------------


def _rotations() -> list[rules.MasterKeyRotation]:
    # master_key_rotate replaces the key file right after its entry commits: rotated = destroyed.
    return [rules.MasterKeyRotation(rotated_at=t, old_key_destroyed_at=t) for t in LedgerEntry.objects.filter(
        kind=GovernanceKind.MASTER_KEY_ROTATED).values_list("created_at", flat=True)]


def erasure_backup_status(request: ErasureRequest) -> rules.BackupStatus:
    destroyed = [t for t in ErasureSnapshot.objects.filter(request=request, key_destroyed_at__isnull=False)
                 .values_list("key_destroyed_at", flat=True)]
    earliest = SnapshotKey.objects.filter(dataset_version__erasures__request=request).order_by("created_at") \
        .values_list("created_at", flat=True).first()
    return rules.backup_status(last_key_destroyed_at=max(destroyed) if destroyed else None, rotations=_rotations(),
                               due_at=request.due_at, now=timezone.now(), earliest_key_created_at=earliest)


@transaction.atomic(durable=True)
def erasure_backups_check(*, request, actor=None) -> ErasureRequest:
    """Move a live-completed request to "backups unreadable" once the master keys that wrapped its
    destroyed data keys are destroyed (``registry master-key-rotate`` after the last destruction)."""
    request = _lock(request)
    if request.state != State.COMPLETED_LIVE:
        raise rules.TransitionRefused(request.state, Action.COMPLETE_BACKUPS, reference=request.reference)
    status = erasure_backup_status(request)
    if not status.unreadable:
        raise ErasureConflict(f"{request.reference}: {status.message}")
    _move(request, Action.COMPLETE_BACKUPS, backups_unreadable_at=status.unreadable_since or timezone.now())
    _ledger(GovernanceKind.ERASURE_BACKUPS_UNREADABLE, request, {
        "unreadable_since": _iso(request.backups_unreadable_at), "message": status.message,
    }, actor)
    return request


# --- the kept keyed hashes -----------------------------------------------------------------------


def erasure_subject_keys_purge(*, now=None, actor=None) -> list[str]:
    """Remove the keyed hash of every final request whose retention (CUSTOS_ERASURE_HASH_RETENTION_DAYS)
    has passed; return their references. From then on the person is no longer kept out of uploads."""
    if actor is not None and not actor.is_superuser:
        raise ValidationError("Only administrators purge the kept hashes (or the scheduled job).")
    now = now or timezone.now()
    retention = timedelta(days=settings.CUSTOS_ERASURE_HASH_RETENTION_DAYS)
    purged = []
    for pk in ErasureRequest.objects.filter(subject_key__isnull=False, closed_at__isnull=False,
                                            state__in=sorted(s.value for s in rules.FINAL_STATES)
                                            ).values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            request = ErasureRequest.objects.select_for_update().get(pk=pk)
            if request.subject_key is None or not rules.hash_purge_due(
                state=request.state, closed_at=request.closed_at, now=now, retention=retention
            ):
                continue
            request.subject_key = None
            request.save(update_fields=["subject_key"])
            _ledger(GovernanceKind.ERASURE_HASH_PURGED, request, {"retention_days": retention.days}, actor)
            purged.append(request.reference)
    return purged


# --- legal holds (Art. 17(3)) -------------------------------------------------------------------


@transaction.atomic(durable=True)
def legal_hold_record(*, ground: str, justification: str, review_on, dataset_version=None, dataset=None,
                      request=None, actor) -> LegalHold:
    """Record a legal hold on one snapshot or a whole dataset; it protects nothing until a second officer confirms it."""
    require(actor, "governance.add_legalhold", what="record legal holds")
    if actor is None:
        raise ValidationError("A legal hold is recorded by a named officer.")
    if (dataset_version is None) == (dataset is None):
        raise ValidationError("A legal hold is on one snapshot or on one dataset.")
    scope = rules.HoldScope.SNAPSHOT if dataset_version is not None else rules.HoldScope.DATASET
    now = timezone.now()
    hold = LegalHold(scope=scope, dataset_version=dataset_version, dataset=dataset, request=request, ground=ground,
                     justification=(justification or "").strip(), review_on=review_on, recorded_by=actor,
                     recorded_at=now)
    draft = rules.LegalHold(hold_id=1, scope=scope, target_id=(dataset_version or dataset).pk,
                            ground=rules.ExceptionGround(ground), justification=hold.justification,
                            review_on=review_on, recorded_by=actor.pk, recorded_at=now,
                            request_reference=request.reference if request else None)
    rules.check_hold(draft, now=now)
    hold.save()
    ledger_append(kind=GovernanceKind.LEGAL_HOLD_RECORDED, subject=hold.ledger_subject, payload={
        "scope": scope.value, "target_id": draft.target_id, "ground": draft.ground.article,
        "review_on": review_on.isoformat(), "request": request.reference if request else None,
        "justification_sha256": hashlib.sha256(hold.justification.encode()).hexdigest(),
    }, actor=actor)
    return hold


@transaction.atomic(durable=True)
def legal_hold_confirm(*, hold: LegalHold, actor) -> LegalHold:
    """A second officer confirms the hold: from now on it keeps its data from erasure."""
    require(actor, "governance.confirm_legalhold", what="confirm legal holds")
    hold = LegalHold.objects.select_for_update(of=("self",)).select_related("request").get(pk=hold.pk)
    now = timezone.now()
    rules.check_hold_confirmation(hold.as_rule(), confirmed_by=actor.pk, now=now, single_officer=_single_officer())
    hold.confirmed_by, hold.confirmed_at = actor, now
    hold.save(update_fields=["confirmed_by", "confirmed_at"])
    ledger_append(kind=GovernanceKind.LEGAL_HOLD_CONFIRMED, subject=hold.ledger_subject,
                  payload={"confirmed_by": actor.pk}, actor=actor)
    return hold


@transaction.atomic(durable=True)
def legal_hold_release(*, hold: LegalHold, reason: str, actor) -> LegalHold:
    """Release a hold; what it kept is erased only through a new plan, approved by a second officer."""
    require(actor, "governance.release_legalhold", what="release legal holds")
    hold = LegalHold.objects.select_for_update(of=("self",)).select_related("request").get(pk=hold.pk)
    now = timezone.now()
    rules.check_hold_release(hold.as_rule(), reason=reason, now=now)
    hold.released_at, hold.release_reason = now, reason.strip()
    hold.save(update_fields=["released_at", "release_reason"])
    ledger_append(kind=GovernanceKind.LEGAL_HOLD_RELEASED, subject=hold.ledger_subject,
                  payload={"reason_sha256": hashlib.sha256(reason.encode()).hexdigest()}, actor=actor)
    return hold
