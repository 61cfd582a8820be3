"""Release requests from submission to approval, rejection, revocation or supersession.

Every function here that changes state locks the request, asks ``governance.rules.releases`` whether
the step is allowed (``TransitionRefused`` → 409, ``DecisionRefused`` → 403), writes the change
and appends its ledger entry in the same transaction. Once an approval has committed, the
release's attestation is signed against a fresh ledger checkpoint that covers every entry it
cites (``release_attestation_issue``; ``manage.py releases attest ID`` re-runs it if that
step failed).

Gates: ``release_request`` starts the gating step and asks ``gate_run_for_release`` for the
current gate run of the model version (starting one if there is none); a gate run that
finishes later reports through ``release_gates_from_run``, which ``services.gating`` calls in
the transaction that records the run's end. The arrow is one way: releases use the gate
services, the gate services know nothing of releases.

Entry points are durable transactions (a caller cannot wrap them and so delay the attestation
that is signed on commit); the steps they compose are ``savepoint=False`` atomics.
"""

import hashlib
from datetime import UTC

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from audit.attestation import sign_statement, statement
from audit.canonical import canonical_json
from audit.models import LedgerEntry
from audit.services import checkpoint_create, ledger_append
from config.errors import Conflict

from ..models import Approval, ApprovalPolicy, GateRun, ReleaseRequest
from ..models.registry import RiskTier
from ..rules import releases as rules
from ..rules.kinds import GovernanceKind
from ..rules.limits import JUSTIFICATION_MIN_LENGTH
from ..rules.releases import Action, ApprovalRule, Decision, RecordedDecision, State, Verdict
from ..selectors.erasure import release_block_reason
from ..selectors.gates import gate_policy_for_model
from .gates import _gate_run_submit
from .guards import recorded_user, require


_APPROVAL_HOOKS: list[str] = []


def register_approval_hook(hook: str) -> None:
    """Call the function at dotted path HOOK as ``hook(release=..., actor=...)`` when a release is
    approved, inside the approving transaction: an app above governance (monitoring, which makes
    the version's monitoring plan) acts on approvals without governance importing it."""
    if hook not in _APPROVAL_HOOKS:
        _APPROVAL_HOOKS.append(hook)


class ReleaseConflict(Conflict):
    """The request collides with the state of things (the API answers 409 Conflict)."""


def _digest(value) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _iso(dt) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- approval policies ------------------------------------------------------------------------


@transaction.atomic(durable=True)
def approval_policy_publish(*, risk_tier: str, environment: str, rule: ApprovalRule, actor=None) -> ApprovalPolicy:
    """Publish a new version of the approval policy for (RISK_TIER, ENVIRONMENT)."""
    return _approval_policy_publish(risk_tier=risk_tier, environment=environment, rule=rule, actor=actor)


@transaction.atomic(savepoint=False)
def _approval_policy_publish(*, risk_tier, environment, rule, actor) -> ApprovalPolicy:
    require(actor, "governance.add_approvalpolicy", what="publish approval policies (organisation-wide authority)")
    if risk_tier not in RiskTier.values or environment not in ("staging", "production"):
        raise ValidationError("Unknown risk tier or environment.")
    last = (
        ApprovalPolicy.objects.select_for_update()
        .filter(risk_tier=risk_tier, environment=environment)
        .order_by("-version")
        .first()
    )
    data = rule.as_json()
    policy = ApprovalPolicy.objects.create(
        risk_tier=risk_tier,
        environment=environment,
        version=(last.version + 1) if last else 1,
        rule=data,
        digest=_digest(data),
        created_by=recorded_user(actor),
    )
    ledger_append(
        kind=GovernanceKind.APPROVAL_POLICY_PUBLISHED,
        subject=policy.ledger_subject,
        payload={
            "risk_tier": risk_tier,
            "environment": environment,
            "version": policy.version,
            "rule": data,
            "digest": policy.digest,
        },
        actor=actor,
    )
    return policy


def approval_policy_current(*, risk_tier: str, environment: str) -> ApprovalPolicy:
    """The latest policy for (RISK_TIER, ENVIRONMENT); the shipped default is published on first use."""
    policy = ApprovalPolicy.objects.filter(risk_tier=risk_tier, environment=environment).order_by("-version").first()
    if policy is None:
        policy = _approval_policy_publish(
            risk_tier=risk_tier, environment=environment, rule=rules.DEFAULT_RULES[(risk_tier, environment)], actor=None
        )
    return policy


# --- the gate hook ----------------------------------------------------------------------------


def _gate_outcome(run):
    """(verdict, ledger seq of its verdict, details) of a finished gate run."""
    finished = LedgerEntry.objects.filter(subject=run.ledger_subject, kind=GovernanceKind.RUN_FINISHED).latest("seq")
    checks = [
        {
            "name": f"{c.get('area')}.{c.get('name')}",
            "value": c.get("value"),
            "limit": c.get("limit"),
            "verdict": c.get("verdict"),
            "reason": c.get("reason", ""),
        }
        for c in (run.result or {}).get("checks", [])
    ]
    details = {
        "run_id": run.pk,
        "policy": {"id": run.policy_id, "name": run.policy.name, "version": run.policy.version, "digest": run.policy.digest},
        "dataset_version_id": run.dataset_version_id,
        "reason": run.reason,
        "checks": checks,
    }
    return run.status, finished.seq, details


def gate_run_for_release(*, release: ReleaseRequest, actor=None):
    """Find or start the gate run for RELEASE's model version; return its outcome if finished, else None.

    The current run is the latest one of the model version under the gate policy that applies
    to the model now (an errored run is not current: a new one is started). When there is none,
    one is started with the evaluation snapshot, label and positive label of the model's last
    run under that policy. With no policy assigned, or no earlier run to take the evaluation
    set from, the release waits in 'gating' until a gate run is submitted (gates API) and
    finishes, which reports here through ``release_gates_from_run``.
    """
    policy = gate_policy_for_model(release.model)
    if policy is None:
        return None
    runs = GateRun.objects.select_related("policy").filter(policy__name=policy.name)
    run = (
        runs.filter(model_version=release.model_version, policy=policy)
        .exclude(status=GateRun.Status.ERROR)
        .order_by("-created_at", "-pk")
        .first()
    )
    if run is None:
        template = runs.filter(model_version__model=release.model).order_by("-created_at", "-pk").first()
        if template is None:
            return None
        run = _gate_run_submit(
            model_version=release.model_version,
            dataset_version=template.dataset_version,
            label_column=template.label_column,
            positive_label=template.positive_label,
            policy=policy,
        )
    if run.status not in GateRun.FINAL:
        return None
    return run


def release_gates_from_run(*, run) -> list[ReleaseRequest]:
    """Move the releases waiting in 'gating' on RUN's model version on with RUN's verdict.

    Called by ``services.gating`` in the transaction that records the run's end. A run under a
    policy that no longer applies to the model leaves them waiting; an errored run fails them
    (never a pass).
    """
    if gate_policy_for_model(run.model_version.model) != run.policy:
        return []
    moved = []
    waiting = ReleaseRequest.objects.filter(model_version=run.model_version, state=State.GATING).order_by("pk")
    for release in waiting:
        moved.append(_release_gate_result_record(release=release, run=run))
    return moved


# --- requests ---------------------------------------------------------------------------------


def _lock(release: ReleaseRequest) -> ReleaseRequest:
    return ReleaseRequest.objects.select_for_update().select_related("model", "model_version").get(pk=release.pk)


def _move(release: ReleaseRequest, action, **fields) -> State:
    """Apply ACTION's transition to RELEASE (raises TransitionRefused) and save FIELDS with it."""
    old = release.state
    release.state = rules.transition(old, action)
    for name, value in fields.items():
        setattr(release, name, value)
    release.save(update_fields=["state", *fields])
    return old


@transaction.atomic(durable=True)
def release_request(*, model_version, environment: str, actor) -> ReleaseRequest:
    """Ask to release MODEL_VERSION to ENVIRONMENT; start gating it at once."""
    model = model_version.model
    require(actor, "governance.add_releaserequest", model.business_unit, what="request releases")
    if environment not in ("staging", "production"):
        raise ValidationError({"environment": "The environment is 'staging' or 'production'."})
    refusal = rules.release_refusal(model.risk_tier)
    if refusal:
        raise ValidationError(refusal)
    policy = approval_policy_current(risk_tier=model.risk_tier, environment=environment)
    open_ = ReleaseRequest.objects.filter(
        model_version=model_version, environment=environment, state__in=[s.value for s in rules.OPEN_STATES]
    ).first()
    if open_ is not None:
        raise ReleaseConflict(f"Release {open_.pk} of this version to {environment} is already {open_.state}.")
    approved = ReleaseRequest.objects.filter(
        model_version=model_version, environment=environment, state=State.APPROVED
    ).first()
    if approved is not None:
        raise ReleaseConflict(f"This version is already approved for {environment} (release {approved.pk}).")
    try:
        with transaction.atomic():
            release = ReleaseRequest.objects.create(
                model=model,
                model_version=model_version,
                environment=environment,
                state=State.SUBMITTED,
                requester=actor,
                approval_policy=policy,
            )
    except IntegrityError:  # a concurrent request for the same version won the race
        raise ReleaseConflict(f"A release of this version to {environment} is already open.") from None
    ledger_append(
        kind=GovernanceKind.RELEASE_REQUESTED,
        subject=release.ledger_subject,
        payload={
            "model_version_id": model_version.pk,
            "model_id": model.pk,
            "business_unit_id": model.business_unit_id,
            "environment": environment,
            "artifact_sha256": model_version.artifact_sha256,
            "approval_policy": {"id": policy.pk, "version": policy.version, "digest": policy.digest},
        },
        actor=actor,
    )
    _move(release, Action.START_GATING)
    ledger_append(kind=GovernanceKind.GATING_STARTED, subject=release.ledger_subject, payload={}, actor=actor)
    finished = gate_run_for_release(release=release, actor=actor)
    if finished is not None:
        release = _release_gate_result_record(release=release, run=finished)
    return release


@transaction.atomic(durable=True)
def release_gate_result_record(*, release: ReleaseRequest, run: GateRun, actor=None) -> ReleaseRequest:
    """Record the verdict of RELEASE's finished gate RUN: what a run's end does (an operator may replay it)."""
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied("Gate results are recorded by the gate runs themselves.")
    return _release_gate_result_record(release=release, run=run)


@transaction.atomic(savepoint=False)
def _release_gate_result_record(*, release: ReleaseRequest, run: GateRun) -> ReleaseRequest:
    """Record the verdict of RELEASE's gate RUN (finished) and move it on: to approval, or to 'gate_failed'.

    Only the system records gate results: a finished run reports them here.
    """
    release = _lock(release)
    verdict, seq, details = _gate_outcome(run)
    verdict = Verdict(verdict)
    _move(
        release,
        rules.gate_action(verdict),
        gate_verdict=verdict.value,
        gate_run=run,
        gate_ledger_seq=seq,
        gate_details=details,
    )
    ledger_append(
        kind=GovernanceKind.GATES_RECORDED,
        subject=release.ledger_subject,
        payload={
            "verdict": verdict.value,
            "gate_run": run.ledger_subject,
            "gate_ledger_seq": seq,
            "state": release.state,
        },
        actor=None,
    )
    return release


def _roles(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def decisions_open_to(*, release: ReleaseRequest, user) -> list[tuple[Decision, str]]:
    """The (decision, role) pairs USER may record on RELEASE now: what ``release_decide`` accepts.

    The admin offers exactly these forms; nobody restates the rules.
    """
    if release.state != State.AWAITING_APPROVAL or not user.has_perm("governance.decide_releaserequest"):
        return []
    if not ReleaseRequest.objects.for_user(user, write=True).filter(pk=release.pk).exists():
        return []
    return rules.decisions_open_to(
        ApprovalRule.from_json(release.approval_policy.rule),
        requester_id=release.requester_id,
        approver_id=user.pk,
        approver_roles=_roles(user),
        decisions=_recorded(release),
        gate_verdict=release.gate_verdict,
    )


def release_outcome(release: ReleaseRequest) -> rules.Outcome:
    """Where RELEASE stands under its approval policy: approvals so far, who is still needed."""
    return rules.evaluate(ApprovalRule.from_json(release.approval_policy.rule), decisions=_recorded(release),
                          gate_verdict=release.gate_verdict or Verdict.ERROR)


def release_still_needs(release: ReleaseRequest) -> tuple[str, ...]:
    """What RELEASE (awaiting approval) still needs, in words: ("Compliance Officer",)."""
    if release.state != State.AWAITING_APPROVAL:
        return ()
    return rules.still_needed(ApprovalRule.from_json(release.approval_policy.rule), release_outcome(release))


def release_outcome_after(release: ReleaseRequest, *, user, decision: str, role: str) -> tuple[str, tuple[str, ...]]:
    """What would follow if USER recorded DECISION in ROLE now: (status, still needed).

    The confirmation page says it before anything is recorded; ``release_decide`` decides."""
    rule = ApprovalRule.from_json(release.approval_policy.rule)
    decisions = [*_recorded(release), RecordedDecision(user.pk, role, Decision(decision))]
    outcome = rules.evaluate(rule, decisions=decisions, gate_verdict=release.gate_verdict or Verdict.ERROR)
    return outcome.status, rules.still_needed(rule, outcome)


def _recorded(release) -> list[RecordedDecision]:
    return [
        RecordedDecision(a.approver_id, a.role, Decision(a.decision), a.justification)
        for a in release.approvals.all()
    ]


@transaction.atomic(durable=True)
def release_decide(*, release: ReleaseRequest, actor, role: str, decision: str, justification: str) -> ReleaseRequest:
    """Record ACTOR's DECISION (approve, reject, override) in ROLE; approve or reject when it settles it."""
    release = _lock(release)
    unit = release.model.business_unit
    require(actor, "governance.decide_releaserequest", unit, what="decide on releases")
    if release.state != State.AWAITING_APPROVAL:
        raise rules.TransitionRefused(
            release.state, Action.APPROVE if decision != Decision.REJECT else Action.REJECT
        )
    try:
        decision = Decision(decision)
    except ValueError:
        raise ValidationError(f"A decision is one of {', '.join(d.value for d in Decision)}.") from None
    if decision != Decision.REJECT:
        # GDPR Art. 17: a version trained on erased data waits for its erasure review.
        blocked = release_block_reason(release.model_version_id)
        if blocked:
            raise ReleaseConflict(blocked)
    rule = ApprovalRule.from_json(release.approval_policy.rule)
    decisions = _recorded(release)
    rules.check_decision(
        rule,
        requester_id=release.requester_id,
        approver_id=actor.pk,
        approver_roles=_roles(actor),
        role=role,
        decision=decision,
        justification=justification,
        decisions=decisions,
        gate_verdict=release.gate_verdict,
    )
    kind = {
        Decision.APPROVE: GovernanceKind.APPROVAL_GIVEN,
        Decision.REJECT: GovernanceKind.REJECTION_GIVEN,
        Decision.OVERRIDE: GovernanceKind.GATE_OVERRIDDEN,
    }[decision]
    entry = ledger_append(  # sealed now: the approval stores its seq
        kind=kind,
        subject=release.ledger_subject,
        payload={
            "approver_id": actor.pk,
            "approver": actor.get_username(),
            "role": role,
            "decision": decision.value,
            "justification_sha256": hashlib.sha256(justification.encode()).hexdigest(),
            "gate_verdict": release.gate_verdict,
        },
        actor=actor,
        sealed=True,
    )
    Approval.objects.create(
        release=release, approver=actor, role=role, decision=decision, justification=justification, ledger_seq=entry.seq
    )
    outcome = rules.evaluate(rule, decisions=_recorded(release), gate_verdict=release.gate_verdict)
    if outcome.status == "approved":
        _approve(release, actor=actor)
    elif outcome.status == "rejected":
        _move(release, Action.REJECT, decided_at=timezone.now())
        ledger_append(
            kind=GovernanceKind.REJECTED, subject=release.ledger_subject, payload={"rejected_by": actor.pk}, actor=actor
        )
    return release


def _approve(release: ReleaseRequest, *, actor) -> None:
    previous = (
        ReleaseRequest.objects.select_for_update()
        .filter(model=release.model, environment=release.environment, state=State.APPROVED)
        .exclude(pk=release.pk)
        .first()
    )
    now = timezone.now()
    if previous is not None:
        _move(previous, Action.SUPERSEDE, superseded_by=release, ended_at=now)
        ledger_append(
            kind=GovernanceKind.SUPERSEDED,
            subject=previous.ledger_subject,
            payload={"superseded_by": release.pk, "model_version_id": release.model_version_id},
            actor=actor,
        )
    _move(release, Action.APPROVE, decided_at=now)
    ledger_append(
        kind=GovernanceKind.APPROVED,
        subject=release.ledger_subject,
        payload={
            "model_version_id": release.model_version_id,
            "environment": release.environment,
            "artifact_sha256": release.model_version.artifact_sha256,
            "approvals": [a.ledger_seq for a in release.approvals.all()],
            "supersedes": previous.pk if previous else None,
        },
        actor=actor,
        sealed=True,  # the attestation cites its seq
    )
    for hook in _APPROVAL_HOOKS:
        import_string(hook)(release=release, actor=actor)
    release_id = release.pk
    # The checkpoint must cover the approval, so it is signed (and exported) after the commit.
    transaction.on_commit(lambda: release_attestation_issue(release=ReleaseRequest.objects.get(pk=release_id)), robust=True)


def release_attestation_issue(*, release: ReleaseRequest, actor=None) -> ReleaseRequest:
    """Sign RELEASE's attestation against a new checkpoint that covers its approval; ledger it.

    Call it outside a transaction (it runs on commit of the approval): the checkpoint is
    signed and exported in its own transaction first, so no exported checkpoint can name
    entries that were rolled back. Does nothing if the release already has its attestation.
    """
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied("Attestations are issued by Custos itself.")
    checkpoint = checkpoint_create()
    with transaction.atomic(durable=True):
        release = _lock(release)
        if release.attestation:
            return release
        if release.state != State.APPROVED:
            raise rules.TransitionRefused(release.state, Action.APPROVE, "Only an approved release is attested.")
        approved = LedgerEntry.objects.filter(subject=release.ledger_subject, kind=GovernanceKind.APPROVED).latest("seq")
        if checkpoint.tree_size <= approved.seq:  # a checkpoint signed before the approval committed
            raise ReleaseConflict("The latest checkpoint does not cover the approval yet; try again.")
        release.attestation = sign_statement(release_statement(release, approved_entry=approved, checkpoint=checkpoint))
        release.save(update_fields=["attestation"])
        ledger_append(
            kind=GovernanceKind.ATTESTATION_ISSUED,
            subject=release.ledger_subject,
            payload={
                "payload_sha256": hashlib.sha256(release.attestation["payload"].encode()).hexdigest(),
                "key_id": release.attestation["signatures"][0]["keyid"],
                "checkpoint_size": checkpoint.tree_size,
            },
            actor=actor,
        )
    return release


def release_statement(release: ReleaseRequest, *, approved_entry, checkpoint) -> dict:
    """The in-toto Statement about RELEASE's artifact (docs/attestation.md)."""
    mv = release.model_version
    model = release.model
    policy = release.approval_policy
    predicate = {
        "release_id": release.pk,
        "environment": release.environment,
        "model": {
            "id": model.pk,
            "name": model.name,
            "version": mv.version,
            "model_version_id": mv.pk,
            "business_unit": model.business_unit.slug,
            "risk_tier": model.risk_tier,
        },
        "artifact": {"sha256": mv.artifact_sha256, "format": mv.artifact_format, "framework": mv.framework},
        "requested_by": release.requester.get_username(),
        "requested_at": _iso(release.created_at),
        "approved_at": _iso(release.decided_at),
        "policies": {
            "approval": {
                "id": policy.pk,
                "risk_tier": policy.risk_tier,
                "environment": policy.environment,
                "version": policy.version,
                "digest": policy.digest,
                "rule": policy.rule,
            },
            "gate": release.gate_details.get("policy"),
        },
        "gates": [
            {
                "run": release.gate_run.ledger_subject if release.gate_run_id else None,
                "verdict": release.gate_verdict,
                "ledger_seq": release.gate_ledger_seq,
            }
        ],
        "approvals": [
            {
                "approver": a.approver.get_username(),
                "role": a.role,
                "decision": a.decision,
                "justification_sha256": hashlib.sha256(a.justification.encode()).hexdigest(),
                "at": _iso(a.decided_at),
                "ledger_seq": a.ledger_seq,
            }
            for a in release.approvals.select_related("approver")
        ],
        "ledger": {
            "origin": settings.CUSTOS_LOG_ORIGIN,
            "approved_seq": approved_entry.seq,
            "approved_entry_hash": bytes(approved_entry.entry_hash).hex(),
            "checkpoint": {
                "size": checkpoint.tree_size,
                "root_hash": bytes(checkpoint.root_hash).hex(),
                "note": checkpoint.note,
            },
        },
    }
    return statement(artifact_name=f"{model.name}@{mv.version}", sha256=mv.artifact_sha256, predicate=predicate)


@transaction.atomic(durable=True)
def release_revoke(*, release: ReleaseRequest, justification: str, actor) -> ReleaseRequest:
    """Revoke an approved release with a written justification; its attestation no longer counts."""
    return _release_revoke(release=release, justification=justification, actor=actor)


@transaction.atomic(savepoint=False)
def _release_revoke(*, release, justification, actor) -> ReleaseRequest:
    release = _lock(release)
    require(actor, "governance.revoke_releaserequest", release.model.business_unit, what="revoke releases")
    if len((justification or "").strip()) < JUSTIFICATION_MIN_LENGTH:
        raise ValidationError(
            {"justification": f"A revocation needs a written justification (at least {JUSTIFICATION_MIN_LENGTH} characters)."}
        )
    _move(release, Action.REVOKE, justification=justification, ended_at=timezone.now())
    ledger_append(
        kind=GovernanceKind.REVOKED,
        subject=release.ledger_subject,
        payload={"justification_sha256": hashlib.sha256(justification.encode()).hexdigest()},
        actor=actor,
    )
    return release
