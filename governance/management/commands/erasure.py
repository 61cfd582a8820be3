"""Run erasure requests (GDPR Art. 17) from the command line, as the Data Protection Officer.

    erasure request --subject-id ID | --subject-id-file PATH --ground b [--received-at ISO]
    erasure verify-identity REF --evidence "ticket 4711"
    erasure plan REF            erasure show REF        erasure list [--overdue]
    erasure approve REF [--plan-sha256 HEX]
    erasure execute REF [--here]   (--here: run the steps in this process, printing each)
    erasure verify REF          (check absence again: the index, the successors, the old keys)
    erasure backups REF         (mark "backups unreadable" once the master key has rotated)
    erasure hold (--snapshot ID | --dataset ID) --ground b|e --justification TEXT --review-on DATE [--request REF]
    erasure hold-confirm HOLD_ID      erasure hold-release HOLD_ID --reason TEXT
    erasure review-decide REVIEW_ID --decision retrain|retain|retire --justification TEXT
    erasure recipient-close TASK_ID --what TEXT
    erasure purge-hashes        (final requests past CUSTOS_ERASURE_HASH_RETENTION_DAYS lose the keyed hash)

Each takes ``--actor USERNAME`` (whose permissions and duties apply) and ``--json``. The id is
read once and never printed; prefer ``--subject-id-file`` so it stays out of the shell history.
"""

from pathlib import Path

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from config.commands import CustosCommand

from ...models import Dataset, DatasetVersion, ErasureReview, LegalHold, RecipientTask
from ...rules import erasure as rules
from ...selectors.erasure import erasure_request_get, erasure_request_list
from ...services import erasure as service


def _get(model, pk):
    found = model.objects.unrestricted().filter(pk=pk).first()
    if found is None:
        raise CommandError(f"No {model._meta.verbose_name} {pk}.")
    return found


def _summary(r) -> dict:
    return {
        "reference": r.reference, "state": r.state, "ground": r.ground, "received_at": r.received_at,
        "due_at": r.due_at, "extension_months": r.extension_months, "plan_sha256": r.plan_sha256,
        "outcome": r.outcome, "error": r.error,
    }


class Command(CustosCommand):
    help = "Run erasure requests (GDPR Art. 17)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)

        def command(name, help_, ref=True):
            p = sub.add_parser(name, help=help_)
            if ref:
                p.add_argument("reference")
            self.add_actor_argument(p)
            self.add_json_argument(p)
            return p

        request = command("request", "Record an erasure request (the id is typed once, never stored).", ref=False)
        who = request.add_mutually_exclusive_group(required=True)
        who.add_argument("--subject-id", help="The data subject's id (prefer --subject-id-file).")
        who.add_argument("--subject-id-file", help="A file whose first line is the id.")
        request.add_argument("--ground", required=True, choices=list("abcdef"), help="Art. 17(1) point.")
        request.add_argument("--received-at", help="ISO 8601 time of receipt (default: now).")
        verify_identity = command("verify-identity", "Record the requester's identity verification.")
        verify_identity.add_argument("--evidence", required=True, help="Where the evidence is kept (a reference).")
        command("plan", "Find the person through the subject index and record the plan.")
        approve = command("approve", "Approve the plan (a second officer).")
        approve.add_argument("--plan-sha256", help="The plan's SHA-256 as read (refused if it changed).")
        execute = command("execute", "Start or resume the execution of the approved plan.")
        execute.add_argument("--here", action="store_true", help="Run the steps in this process and print each.")
        command("show", "Show a request, its plan and progress.")
        command("verify", "Check the person's absence again (index, successors, old keys).")
        command("backups", "Mark a completed request 'backups unreadable' once the master key has rotated.")
        listing = command("list", "List requests, deadline first.", ref=False)
        listing.add_argument("--overdue", action="store_true")
        hold = command("hold", "Record a legal hold (Art. 17(3)); a second officer confirms it.", ref=False)
        target = hold.add_mutually_exclusive_group(required=True)
        target.add_argument("--snapshot", type=int, help="Dataset version id.")
        target.add_argument("--dataset", type=int, help="Dataset id (every version).")
        hold.add_argument("--ground", required=True, choices=[g.value for g in rules.ExceptionGround])
        hold.add_argument("--justification", required=True)
        hold.add_argument("--review-on", required=True, help="YYYY-MM-DD, at most 12 months ahead.")
        hold.add_argument("--request", help="Limit the hold to this erasure request.")
        for name, help_ in (("hold-confirm", "Confirm a legal hold (a second officer)."),
                            ("hold-release", "Release a legal hold.")):
            p = command(name, help_, ref=False)
            p.add_argument("hold_id", type=int)
            if name == "hold-release":
                p.add_argument("--reason", required=True)
        decide = command("review-decide", "Decide the erasure review of a model version.", ref=False)
        decide.add_argument("review_id", type=int)
        decide.add_argument("--decision", required=True, choices=[d.value for d in rules.ReviewDecision])
        decide.add_argument("--justification", required=True)
        command("purge-hashes", "Remove the keyed hashes of final requests past their retention.", ref=False)
        close = command("recipient-close", "Close a recipient task with what its owner did.", ref=False)
        close.add_argument("task_id", type=int)
        close.add_argument("--what", required=True)

    def handle(self, *args, action, **opts):
        actor = self.actor(opts)
        if action == "request":
            subject_id = opts["subject_id"]
            if opts["subject_id_file"]:
                lines = Path(opts["subject_id_file"]).read_text().splitlines()
                subject_id = lines[0] if lines else ""
            received = None
            if opts["received_at"]:
                received = parse_datetime(opts["received_at"])
                if received is None or timezone.is_naive(received):
                    raise CommandError("--received-at is an ISO 8601 time with its offset, e.g. 2026-01-31T09:00Z.")
            r = service.erasure_request_record(subject_id=subject_id, ground=opts["ground"], received_at=received,
                                               actor=actor)
            return self._report(r, opts, f"Recorded {r.reference}, due {r.due_at.isoformat()}.")
        if action in ("hold", "hold-confirm", "hold-release", "review-decide", "recipient-close"):
            return self._exception_step(action, actor, opts)
        if action == "purge-hashes":
            purged = service.erasure_subject_keys_purge(actor=actor)
            if opts["json"]:
                return self.print_json(purged)
            self.stdout.write(f"{len(purged)} keyed hash(es) purged" + (f": {', '.join(purged)}." if purged else "."))
            return None
        if action == "list":
            rows = [_summary(r) for r in erasure_request_list(user=self._reader(actor), overdue=opts["overdue"])]
            if opts["json"]:
                return self.print_json(rows)
            for row in rows:
                self.stdout.write(f"{row['reference']}  {row['state']:<20} due {row['due_at'].isoformat()}")
            return None
        r = erasure_request_get(user=self._reader(actor), reference=opts["reference"])
        if action == "verify-identity":
            r = service.erasure_identity_verify(request=r, evidence_reference=opts["evidence"], actor=actor)
            return self._report(r, opts, f"{r.reference}: identity verified.")
        if action == "plan":
            r = service.erasure_plan(request=r, actor=actor)
            return self._report(r, opts, self._plan_text(r))
        if action == "approve":
            r = service.erasure_plan_approve(request=r, plan_sha256=opts["plan_sha256"], actor=actor)
            return self._report(r, opts, f"{r.reference}: plan {r.plan_sha256[:12]}… approved.")
        if action == "execute":
            r = service.erasure_execute(request=r, actor=actor)
            if opts["here"]:
                service.erasure_run(request_id=r.pk, progress=lambda line: self.stderr.write(line))
            r.refresh_from_db()
            outstanding = service.erasure_outstanding(r) if r.state == "executing" else ()
            text = f"{r.reference}: {r.state}." + (f" {r.error}" if r.error else "")
            text += "".join(f"\n  waiting: {o}" for o in outstanding)
            return self._report(r, opts, text)
        if action == "verify":
            proof = service.absence_proof(r)
            if opts["json"]:
                return self.print_json(proof)
            clean = not (proof["index_entries"] or proof["predecessors_readable"] or proof["successors_holding_person"])
            self.stdout.write(
                f"{r.reference}: index entries {proof['index_entries']}, old snapshots readable "
                f"{proof['predecessors_readable']}, successors unverified {proof['successors_holding_person']}: "
                + ("absent." if clean else "NOT absent.")
            )
            if not clean:
                raise CommandError(f"{r.reference}: the person is still found.")
            return None
        if action == "backups":
            r = service.erasure_backups_check(request=r, actor=actor)
            return self._report(r, opts, f"{r.reference}: backups unreadable since {r.backups_unreadable_at.isoformat()}.")
        return self._report(r, opts, self._show_text(r))  # show

    def _exception_step(self, action, actor, opts):
        if action == "hold":
            review_on = parse_date(opts["review_on"] or "")
            if review_on is None:
                raise CommandError("--review-on is a date, YYYY-MM-DD.")
            request = (erasure_request_get(user=self._reader(actor), reference=opts["request"])
                       if opts["request"] else None)
            dataset_version = _get(DatasetVersion, opts["snapshot"]) if opts["snapshot"] else None
            dataset = _get(Dataset, opts["dataset"]) if opts["dataset"] else None
            hold = service.legal_hold_record(ground=opts["ground"], justification=opts["justification"],
                                             review_on=review_on, dataset_version=dataset_version, dataset=dataset,
                                             request=request, actor=actor)
            text = f"Legal hold #{hold.pk} recorded; it protects nothing until a second officer confirms it."
        elif action == "hold-confirm":
            hold = service.legal_hold_confirm(hold=_get(LegalHold, opts["hold_id"]), actor=actor)
            text = f"Legal hold #{hold.pk} confirmed."
        elif action == "hold-release":
            hold = service.legal_hold_release(hold=_get(LegalHold, opts["hold_id"]), reason=opts["reason"],
                                              actor=actor)
            text = f"Legal hold #{hold.pk} released; what it kept is erased through a new plan."
        elif action == "review-decide":
            review = service.erasure_review_decide(review=_get(ErasureReview, opts["review_id"]),
                                                   decision=opts["decision"], justification=opts["justification"],
                                                   actor=actor)
            text = f"Erasure review {review.pk} of model version {review.model_version_id}: {review.decision}."
        else:
            task = service.recipient_task_close(task=_get(RecipientTask, opts["task_id"]), what_was_done=opts["what"],
                                                actor=actor)
            text = f"Recipient task {task.pk} closed."
        if opts["json"]:
            return self.print_json({"message": text})
        self.stdout.write(text)
        return None

    def _reader(self, actor):
        if actor is None:
            raise CommandError("Give --actor USERNAME (a Data Protection Officer or an Auditor) to read requests.")
        return actor

    def _report(self, r, opts, text):
        if opts["json"]:
            data = _summary(r)
            data.update(plan=r.plan, absence_proof=r.absence_proof)
            return self.print_json(data)
        self.stdout.write(text)
        return None

    def _plan_text(self, r) -> str:
        plan = r.approved_plan()
        lines = [plan.summary(), f"plan sha256: {r.plan_sha256}"]
        lines += [f"  {s.reason}" for s in plan.snapshots]
        lines += [f"  {t.message}" for t in plan.recipient_tasks]
        lines += [f"  {v.message}" for v in plan.reviews]
        lines += [f"  warning: {w}" for w in plan.warnings]
        return "\n".join(lines)

    def _show_text(self, r) -> str:
        lines = [f"{r.reference}  {r.state}  ground {r.ground}  received {r.received_at.isoformat()}  "
                 f"due {r.due_at.isoformat()}"]
        if r.plan:
            lines.append(self._plan_text(r))
        for es in r.snapshots.all():
            lines.append(f"  snapshot {es.predecessor_id} -> {es.successor_id}: verification {es.verification}, "
                         f"committed {es.successor_committed}, old key destroyed {es.predecessor_key_destroyed}")
        if r.outcome:
            lines.append(r.outcome)
        if r.error:
            lines.append(f"error: {r.error}")
        return "\n".join(lines)
