"""The release process as pure functions: the state machine and approval-policy evaluation.

No database here. The services in ``governance.services.releases`` load the rows, ask these
functions whether a step is allowed and what follows from it, then write the change and its
ledger entry in one transaction. Keeping the rules pure lets the tests walk every transition
and every combination of decisions.

A release request moves::

    submitted ─start_gating→ gating ─gates_passed / gates_inconclusive→ awaiting_approval
                                    └─gates_failed→ gate_failed
    awaiting_approval ─approve→ approved ─revoke→ revoked
                      └─reject→ rejected          └─supersede→ superseded

Anything else is refused with ``TransitionRefused`` (the API answers 409 Conflict).
"""

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from config.errors import Conflict, DomainError, Refused

from ..gates.policy import Verdict

from . import roles
from .limits import JUSTIFICATION_MIN_LENGTH


class State(StrEnum):
    SUBMITTED = "submitted"
    GATING = "gating"
    AWAITING_APPROVAL = "awaiting_approval"
    GATE_FAILED = "gate_failed"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"


# What a person reads for each state (the admin, the reports): never the enum's name.
STATE_LABELS = {
    State.SUBMITTED: "Submitted",
    State.GATING: "Gates running",
    State.AWAITING_APPROVAL: "Awaiting approval",
    State.GATE_FAILED: "Failed its gates",
    State.APPROVED: "Approved",
    State.REJECTED: "Rejected",
    State.REVOKED: "Revoked",
    State.SUPERSEDED: "Superseded",
}


def state_label(state) -> str:
    try:
        return STATE_LABELS[State(state)]
    except ValueError:
        return str(state)


class Action(StrEnum):
    START_GATING = "start_gating"
    GATES_PASSED = "gates_passed"
    GATES_INCONCLUSIVE = "gates_inconclusive"
    GATES_FAILED = "gates_failed"
    APPROVE = "approve"
    REJECT = "reject"
    REVOKE = "revoke"
    SUPERSEDE = "supersede"


TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.SUBMITTED, Action.START_GATING): State.GATING,
    (State.GATING, Action.GATES_PASSED): State.AWAITING_APPROVAL,
    (State.GATING, Action.GATES_INCONCLUSIVE): State.AWAITING_APPROVAL,
    (State.GATING, Action.GATES_FAILED): State.GATE_FAILED,
    (State.AWAITING_APPROVAL, Action.APPROVE): State.APPROVED,
    (State.AWAITING_APPROVAL, Action.REJECT): State.REJECTED,
    (State.APPROVED, Action.REVOKE): State.REVOKED,
    (State.APPROVED, Action.SUPERSEDE): State.SUPERSEDED,
}

# States a request never leaves.
FINAL_STATES = frozenset({State.GATE_FAILED, State.REJECTED, State.REVOKED, State.SUPERSEDED})
# States in which a request is still on its way to a decision (one per model version and
# environment at a time).
OPEN_STATES = frozenset({State.SUBMITTED, State.GATING, State.AWAITING_APPROVAL})


class TransitionRefused(Conflict):
    """A step that the current state does not allow (the API maps it to 409 Conflict)."""

    def __init__(self, state, action, detail=None):
        self.state = State(state)
        self.action = Action(action)
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == self.state)
        message = detail or (
            f"A release request in state '{self.state}' cannot '{self.action}'"
            + (f" (allowed: {', '.join(allowed)})." if allowed else " (it is final).")
        )
        super().__init__(message)


def transition(state, action) -> State:
    """Return the state that ACTION leads to from STATE, or raise TransitionRefused."""
    try:
        key = (State(state), Action(action))
    except ValueError as exc:
        raise ValueError(f"Unknown state or action: {state!r}, {action!r}") from exc
    if key not in TRANSITIONS:
        raise TransitionRefused(*key)
    return TRANSITIONS[key]


def allowed_actions(state) -> list[Action]:
    return [a for (s, a) in TRANSITIONS if s == State(state)]


# --- approval policies ------------------------------------------------------------------------


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    OVERRIDE = "override"  # accepts an inconclusive gate result; not an approval by itself


def gate_action(verdict) -> Action:
    """Map a gate run's verdict to the transition out of 'gating'. An error never passes."""
    return {
        Verdict.PASSED: Action.GATES_PASSED,
        Verdict.INCONCLUSIVE: Action.GATES_INCONCLUSIVE,
        Verdict.FAILED: Action.GATES_FAILED,
        Verdict.ERROR: Action.GATES_FAILED,
    }[Verdict(verdict)]  # a run as a whole is never "not applicable"


# EU AI Act Art. 5: a model of a prohibited practice is never released, whatever a policy says.
UNRELEASABLE_TIERS = frozenset({"prohibited"})


def release_refusal(risk_tier: str) -> str | None:
    """Why a model of RISK_TIER may never be released, or None if it may."""
    if risk_tier in UNRELEASABLE_TIERS:
        return "Models of a prohibited practice (EU AI Act Art. 5) may not be released."
    return None


@dataclass(frozen=True)
class ApprovalRule:
    """Who must agree before a release of one risk tier to one environment is approved.

    ``required_roles`` is a multiset: ("Model Risk Validator", "Compliance Officer") needs one
    approval given in each role. ``min_approvers`` distinct people must approve in all.
    ``approver_roles`` may decide at all; ``override_roles`` may accept an inconclusive gate.
    ``releasable`` is False for tiers that may never be released (EU AI Act prohibited).
    """

    min_approvers: int
    required_roles: tuple[str, ...] = ()
    approver_roles: tuple[str, ...] = (roles.COMPLIANCE_OFFICER, roles.MODEL_RISK_VALIDATOR)
    override_roles: tuple[str, ...] = (roles.MODEL_RISK_VALIDATOR,)
    releasable: bool = True

    def __post_init__(self):
        if self.min_approvers < 0:
            raise ValueError("min_approvers must not be negative.")
        if self.releasable and self.min_approvers < 1:
            raise ValueError("A releasable tier needs at least one approver (segregation of duties).")
        if len(self.required_roles) > self.min_approvers:
            raise ValueError("More required roles than approvers: raise min_approvers.")
        stray = set(self.required_roles) - set(self.approver_roles)
        if stray:
            raise ValueError(f"Required roles that may not approve: {sorted(stray)}.")

    def as_json(self) -> dict:
        return {
            "min_approvers": self.min_approvers,
            "required_roles": list(self.required_roles),
            "approver_roles": list(self.approver_roles),
            "override_roles": list(self.override_roles),
            "releasable": self.releasable,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ApprovalRule":
        return cls(
            min_approvers=int(data["min_approvers"]),
            required_roles=tuple(data.get("required_roles", ())),
            approver_roles=tuple(data.get("approver_roles", cls.approver_roles)),
            override_roles=tuple(data.get("override_roles", cls.override_roles)),
            releasable=bool(data.get("releasable", True)),
        )


# Defaults per EU AI Act risk tier and environment. High risk to production follows SR 11-7 /
# PRA SS1/23: validation independent of development (a Model Risk Validator) and a second line
# sign-off (a Compliance Officer).
DEFAULT_RULES: dict[tuple[str, str], ApprovalRule] = {
    ("high", "production"): ApprovalRule(
        min_approvers=2, required_roles=(roles.MODEL_RISK_VALIDATOR, roles.COMPLIANCE_OFFICER)
    ),
    ("high", "staging"): ApprovalRule(min_approvers=1, required_roles=(roles.MODEL_RISK_VALIDATOR,)),
    ("limited", "production"): ApprovalRule(min_approvers=1),
    ("limited", "staging"): ApprovalRule(min_approvers=1),
    ("minimal", "production"): ApprovalRule(min_approvers=1),
    ("minimal", "staging"): ApprovalRule(min_approvers=1),
}
DEFAULT_RULES.update({
    (tier, environment): ApprovalRule(min_approvers=0, approver_roles=(), override_roles=(), releasable=False)
    for tier in UNRELEASABLE_TIERS
    for environment in ("production", "staging")
})


@dataclass(frozen=True)
class RecordedDecision:
    """One decision already on a request (from the Approval table)."""

    approver_id: int
    role: str
    decision: Decision
    justification: str = ""


@dataclass(frozen=True)
class Outcome:
    """Where a request stands under its rule: 'pending', 'approved' or 'rejected'."""

    status: str
    approvers: int
    missing_roles: tuple[str, ...] = ()
    needs_override: bool = False
    reasons: tuple[str, ...] = field(default=())


class DecisionRefused(Refused):
    """A decision the segregation-of-duties rules do not allow (the API answers 403)."""


def evaluate(rule: ApprovalRule, *, decisions, gate_verdict) -> Outcome:
    """Return where a request stands given the DECISIONS recorded so far.

    One rejection ends it. Otherwise it is approved once ``min_approvers`` distinct people
    approved, each required role is covered by an approval given in that role, and — when the
    gates were inconclusive — someone allowed to override has done so.
    """
    decisions = list(decisions)
    if any(d.decision == Decision.REJECT for d in decisions):
        return Outcome(status="rejected", approvers=0, reasons=("a decision-maker rejected the request",))
    approvals = {}
    for d in decisions:  # one approval per person counts, in the role they first approved in
        if d.decision == Decision.APPROVE and d.approver_id not in approvals:
            approvals[d.approver_id] = d.role
    have = Counter(approvals.values())
    need = Counter(rule.required_roles)
    missing = tuple(sorted((need - have).elements()))
    overridden = any(d.decision == Decision.OVERRIDE and d.role in rule.override_roles for d in decisions)
    needs_override = Verdict(gate_verdict) == Verdict.INCONCLUSIVE and not overridden
    reasons = []
    if len(approvals) < rule.min_approvers:
        reasons.append(f"{len(approvals)} of {rule.min_approvers} approvals")
    if missing:
        reasons.append("missing approval by " + ", ".join(missing))
    if needs_override:
        reasons.append("inconclusive gate needs an override")
    if not rule.releasable:
        reasons.append("this risk tier may not be released")
    done = rule.releasable and not reasons
    return Outcome(
        status="approved" if done else "pending",
        approvers=len(approvals),
        missing_roles=missing,
        needs_override=needs_override,
        reasons=tuple(reasons),
    )


def still_needed(rule: ApprovalRule, outcome: Outcome) -> tuple[str, ...]:
    """What a pending request still needs, in words: ("Compliance Officer", "1 more approver"),
    an override of an inconclusive gate first, the missing roles as one part.

    Empty when nothing more is needed (approved, rejected, or a tier that may never be released,
    which ``outcome.reasons`` explains)."""
    if outcome.status != "pending" or not rule.releasable:
        return ()
    parts = []
    if outcome.needs_override:
        parts.append("an override of the inconclusive gate by a " + " or a ".join(rule.override_roles))
    if outcome.missing_roles:
        parts.append(" and ".join(outcome.missing_roles))
    more = rule.min_approvers - outcome.approvers - len(outcome.missing_roles)
    if more > 0:
        parts.append(f"{more} more approver{'s' if more > 1 else ''}")
    return tuple(parts)


def check_decision(
    rule: ApprovalRule,
    *,
    requester_id,
    approver_id,
    approver_roles,
    role: str,
    decision,
    justification: str,
    decisions,
    gate_verdict,
) -> None:
    """Raise DecisionRefused unless APPROVER may record DECISION in ROLE now, with JUSTIFICATION.

    Every decision carries a written justification; the rest is ``decision_refusal``, which the
    admin also asks to know which decisions to offer (``decisions_open_to``).
    """
    if len((justification or "").strip()) < JUSTIFICATION_MIN_LENGTH:
        raise DomainError(
            f"A decision needs a written justification (at least {JUSTIFICATION_MIN_LENGTH} characters).",
            field="justification",
        )
    refusal = decision_refusal(
        rule, requester_id=requester_id, approver_id=approver_id, approver_roles=approver_roles, role=role,
        decision=decision, decisions=decisions, gate_verdict=gate_verdict,
    )
    if refusal:
        raise DecisionRefused(refusal)


def decision_refusal(rule: ApprovalRule, *, requester_id, approver_id, approver_roles, role, decision, decisions,
                     gate_verdict) -> str | None:
    """Why APPROVER may not record DECISION in ROLE now, or None if they may.

    The requester never decides on their own request; the approver must hold the role they act
    in and the rule must let that role decide (or override); each person approves or rejects
    once; an override is only for an inconclusive gate, once, and comes first: nobody approves a
    release whose inconclusive gate no one has accepted yet (a rejection is always possible).
    """
    decision = Decision(decision)
    decisions = list(decisions)
    if not rule.releasable:
        return "Models of this risk tier may not be released."
    if approver_id == requester_id:
        return "The requester may not decide on their own release request."
    if role not in set(approver_roles):
        return f"You do not hold the role '{role}'."
    overridden = any(d.decision == Decision.OVERRIDE for d in decisions)
    if decision == Decision.OVERRIDE:
        if role not in rule.override_roles:
            return f"The role '{role}' may not override an inconclusive gate."
        if Verdict(gate_verdict) != Verdict.INCONCLUSIVE:
            return "Only an inconclusive gate result can be overridden."
        if overridden:
            return "The inconclusive gate result was already overridden."
        return None
    if role not in rule.approver_roles:
        return f"The role '{role}' may not decide on releases under this policy."
    if any(d.approver_id == approver_id and d.decision != Decision.OVERRIDE for d in decisions):
        return "You have already decided on this request; approvals must come from distinct people."
    if decision == Decision.APPROVE and Verdict(gate_verdict) == Verdict.INCONCLUSIVE and not overridden:
        who = " or ".join(rule.override_roles) or "nobody under this policy"
        return f"The gate was inconclusive: it must be overridden first (by a {who}), then approved."
    return None


def decisions_open_to(rule: ApprovalRule, *, requester_id, approver_id, approver_roles, decisions,
                      gate_verdict) -> list[tuple[Decision, str]]:
    """Every (decision, role) APPROVER may record now: exactly what ``check_decision`` accepts."""
    return [
        (decision, role)
        for role in sorted(set(approver_roles))
        for decision in Decision
        if decision_refusal(rule, requester_id=requester_id, approver_id=approver_id, approver_roles=approver_roles,
                            role=role, decision=decision, decisions=decisions, gate_verdict=gate_verdict) is None
    ]
