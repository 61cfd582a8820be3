"""The pure release rules: every transition of the state machine and the approval policies."""

import itertools

import pytest

from config.errors import DomainError
from hypothesis import given
from hypothesis import strategies as st

from governance.rules import roles
from governance.rules.releases import (
    DEFAULT_RULES,
    FINAL_STATES,
    TRANSITIONS,
    Action,
    ApprovalRule,
    Decision,
    DecisionRefused,
    Verdict,
    RecordedDecision,
    State,
    TransitionRefused,
    allowed_actions,
    check_decision,
    decisions_open_to,
    evaluate,
    gate_action,
    transition,
)

CO, MRV, DS = roles.COMPLIANCE_OFFICER, roles.MODEL_RISK_VALIDATOR, roles.DATA_SCIENTIST

EXPECTED = {
    (State.SUBMITTED, Action.START_GATING): State.GATING,
    (State.GATING, Action.GATES_PASSED): State.AWAITING_APPROVAL,
    (State.GATING, Action.GATES_INCONCLUSIVE): State.AWAITING_APPROVAL,
    (State.GATING, Action.GATES_FAILED): State.GATE_FAILED,
    (State.AWAITING_APPROVAL, Action.APPROVE): State.APPROVED,
    (State.AWAITING_APPROVAL, Action.REJECT): State.REJECTED,
    (State.APPROVED, Action.REVOKE): State.REVOKED,
    (State.APPROVED, Action.SUPERSEDE): State.SUPERSEDED,
}


@pytest.mark.parametrize("state,action", list(itertools.product(State, Action)))
def test_every_pair_of_state_and_action(state, action):
    if (state, action) in EXPECTED:
        assert transition(state, action) == EXPECTED[(state, action)]
        assert action in allowed_actions(state)
    else:
        with pytest.raises(TransitionRefused) as exc:
            transition(state, action)
        assert exc.value.state == state and exc.value.action == action
        assert state.value in str(exc.value)
        assert action not in allowed_actions(state)


def test_table_is_exactly_the_documented_one():
    assert TRANSITIONS == EXPECTED


def test_final_states_have_no_way_out():
    for state in FINAL_STATES:
        assert allowed_actions(state) == []
        assert "final" in str(pytest.raises(TransitionRefused, transition, state, Action.APPROVE).value)


def test_unknown_names_are_a_value_error_not_a_refusal():
    with pytest.raises(ValueError):
        transition("limbo", "approve")


@given(st.lists(st.sampled_from(list(Action)), max_size=12))
def test_any_walk_stays_in_the_graph(actions):
    state = State.SUBMITTED
    for action in actions:
        try:
            new = transition(state, action)
        except TransitionRefused:
            continue
        assert (state, action) in TRANSITIONS
        assert state not in FINAL_STATES
        state = new
    # Approved is reachable only through awaiting_approval, never from gate_failed.
    assert state in set(State)


def test_gate_verdicts_map_to_transitions_and_an_error_never_passes():
    assert gate_action("passed") == Action.GATES_PASSED
    assert gate_action("inconclusive") == Action.GATES_INCONCLUSIVE
    assert gate_action("failed") == Action.GATES_FAILED
    assert gate_action("error") == Action.GATES_FAILED


# --- approval policies ----------------------------------------------------------------------

HIGH_PROD = DEFAULT_RULES[("high", "production")]


def approve(who, role):
    return RecordedDecision(approver_id=who, role=role, decision=Decision.APPROVE, justification="checked the evidence")


def test_high_risk_production_needs_a_validator_and_an_officer():
    assert evaluate(HIGH_PROD, decisions=[], gate_verdict="passed").status == "pending"
    one = evaluate(HIGH_PROD, decisions=[approve(1, MRV)], gate_verdict="passed")
    assert one.status == "pending" and one.missing_roles == (CO,) and one.approvers == 1
    two_validators = evaluate(HIGH_PROD, decisions=[approve(1, MRV), approve(2, MRV)], gate_verdict="passed")
    assert two_validators.status == "pending" and two_validators.missing_roles == (CO,)
    done = evaluate(HIGH_PROD, decisions=[approve(1, MRV), approve(2, CO)], gate_verdict="passed")
    assert done.status == "approved" and done.reasons == ()


def test_one_person_counts_once_even_if_recorded_twice():
    out = evaluate(HIGH_PROD, decisions=[approve(1, MRV), approve(1, CO)], gate_verdict="passed")
    assert out.status == "pending" and out.approvers == 1


def test_one_rejection_ends_it_whatever_else_was_said():
    reject = RecordedDecision(3, CO, Decision.REJECT, "fairness evidence is weak")
    out = evaluate(HIGH_PROD, decisions=[approve(1, MRV), approve(2, CO), reject], gate_verdict="passed")
    assert out.status == "rejected"


def test_inconclusive_gate_needs_an_override_by_an_allowed_role():
    approvals = [approve(1, MRV), approve(2, CO)]
    out = evaluate(HIGH_PROD, decisions=approvals, gate_verdict="inconclusive")
    assert out.status == "pending" and out.needs_override
    by_officer = RecordedDecision(2, CO, Decision.OVERRIDE, "group too small, reviewed by hand")
    assert evaluate(HIGH_PROD, decisions=[*approvals, by_officer], gate_verdict="inconclusive").needs_override
    by_validator = RecordedDecision(1, MRV, Decision.OVERRIDE, "group too small, reviewed by hand")
    assert evaluate(HIGH_PROD, decisions=[*approvals, by_validator], gate_verdict="inconclusive").status == "approved"


def test_override_is_not_an_approval():
    override = RecordedDecision(1, MRV, Decision.OVERRIDE, "group too small, reviewed by hand")
    out = evaluate(HIGH_PROD, decisions=[override, approve(2, CO)], gate_verdict="inconclusive")
    assert out.status == "pending" and out.approvers == 1 and out.missing_roles == (MRV,)


def test_prohibited_tier_is_never_approved_and_refuses_every_decision():
    rule = DEFAULT_RULES[("prohibited", "production")]
    assert evaluate(rule, decisions=[], gate_verdict="passed").status == "pending"
    with pytest.raises(DecisionRefused, match="may not be released"):
        check_decision(rule, **_args(approver_id=2))


def test_every_tier_and_environment_has_a_rule():
    for tier, env in itertools.product(["prohibited", "high", "limited", "minimal"], ["staging", "production"]):
        assert (tier, env) in DEFAULT_RULES


def test_rules_round_trip_through_json_and_refuse_nonsense():
    assert ApprovalRule.from_json(HIGH_PROD.as_json()) == HIGH_PROD
    with pytest.raises(ValueError):
        ApprovalRule(min_approvers=0)
    with pytest.raises(ValueError):
        ApprovalRule(min_approvers=1, required_roles=(MRV, CO))
    with pytest.raises(ValueError):
        ApprovalRule(min_approvers=1, required_roles=(DS,))


def _args(**over):
    args = dict(
        requester_id=1,
        approver_id=2,
        approver_roles={MRV},
        role=MRV,
        decision=Decision.APPROVE,
        justification="independent validation done",
        decisions=[],
        gate_verdict="passed",
    )
    args.update(over)
    return args


def test_a_valid_decision_passes():
    check_decision(HIGH_PROD, **_args())
    check_decision(HIGH_PROD, **_args(decision=Decision.REJECT))


@pytest.mark.parametrize(
    "over,message",
    [
        ({"approver_id": 1}, "requester"),
        ({"role": CO}, "do not hold"),
        ({"approver_roles": {DS}, "role": DS}, "may not decide"),
        ({"justification": ""}, "justification"),
        ({"justification": "   ok    "}, "justification"),
        ({"decisions": [RecordedDecision(2, MRV, Decision.APPROVE, "x" * 20)]}, "distinct"),
        ({"decisions": [RecordedDecision(2, MRV, Decision.REJECT, "x" * 20)], "decision": "reject"}, "already"),
        ({"decision": Decision.OVERRIDE}, "inconclusive"),
        ({"decision": Decision.OVERRIDE, "approver_roles": {CO}, "role": CO, "gate_verdict": "inconclusive"}, "override"),
        (
            {
                "decision": Decision.OVERRIDE,
                "gate_verdict": "inconclusive",
                "decisions": [RecordedDecision(3, MRV, Decision.OVERRIDE, "x" * 20)],
            },
            "already overridden",
        ),
    ],
)
def test_refused_decisions(over, message):
    # a refusal of the rules (403) or, for a missing justification, invalid input (400)
    with pytest.raises(DomainError, match=message):
        check_decision(HIGH_PROD, **_args(**over))


def test_an_inconclusive_gate_is_overridden_before_anyone_approves():
    refused = "must be overridden first"
    with pytest.raises(DecisionRefused, match=refused):
        check_decision(HIGH_PROD, **_args(gate_verdict="inconclusive"))
    # rejecting is always possible; and once overridden, approving is too
    check_decision(HIGH_PROD, **_args(gate_verdict="inconclusive", decision=Decision.REJECT))
    override = RecordedDecision(2, MRV, Decision.OVERRIDE, "reviewed the small group by hand")
    check_decision(HIGH_PROD, **_args(decisions=[override], gate_verdict="inconclusive", approver_id=4))


def test_the_decisions_open_to_a_person_are_exactly_those_check_decision_accepts():
    """The admin offers decisions_open_to(); the service enforces check_decision(): one rule."""
    for verdict in ("passed", "inconclusive"):
        for roles_held in ({CO}, {MRV}, {CO, MRV}, set()):
            for decisions in ([], [RecordedDecision(2, MRV, Decision.OVERRIDE, "reviewed the small group by hand")]):
                offered = set(decisions_open_to(HIGH_PROD, requester_id=1, approver_id=3, approver_roles=roles_held,
                                                decisions=decisions, gate_verdict=verdict))
                for role in (CO, MRV):
                    for decision in Decision:
                        try:
                            check_decision(HIGH_PROD, requester_id=1, approver_id=3, approver_roles=roles_held,
                                           role=role, decision=decision, justification="a good reason",
                                           decisions=decisions, gate_verdict=verdict)
                        except DecisionRefused:
                            assert (decision, role) not in offered
                        else:
                            assert (decision, role) in offered


def test_an_overrider_may_still_approve_once():
    override = RecordedDecision(2, MRV, Decision.OVERRIDE, "reviewed the small group by hand")
    check_decision(HIGH_PROD, **_args(decisions=[override], gate_verdict="inconclusive"))


person = st.integers(min_value=2, max_value=6)
role = st.sampled_from([CO, MRV])
decision = st.builds(RecordedDecision, person, role, st.sampled_from(list(Decision)), st.just("some reason here"))


@given(st.lists(decision, max_size=8), st.sampled_from(list(Verdict)))
def test_approval_implies_every_rule_holds(decisions, verdict):
    out = evaluate(HIGH_PROD, decisions=decisions, gate_verdict=verdict)
    approvers = {d.approver_id: d.role for d in reversed(decisions) if d.decision == Decision.APPROVE}
    if out.status == "approved":
        assert not any(d.decision == Decision.REJECT for d in decisions)
        assert len(approvers) >= 2
        assert {MRV, CO} <= {d.role for d in decisions if d.decision == Decision.APPROVE}
        if verdict == Verdict.INCONCLUSIVE:
            assert any(d.decision == Decision.OVERRIDE and d.role == MRV for d in decisions)
    if any(d.decision == Decision.REJECT for d in decisions):
        assert out.status == "rejected"


def test_still_needed_says_who_in_words():
    from governance.rules import roles as r
    from governance.rules.releases import ApprovalRule, Decision, RecordedDecision, evaluate, still_needed

    rule = ApprovalRule(min_approvers=2, required_roles=(r.MODEL_RISK_VALIDATOR, r.COMPLIANCE_OFFICER))

    def needs(decisions, verdict="passed"):
        return still_needed(rule, evaluate(rule, decisions=decisions, gate_verdict=verdict))

    assert needs([]) == ("Compliance Officer and Model Risk Validator",)
    validator = RecordedDecision(1, r.MODEL_RISK_VALIDATOR, Decision.APPROVE)
    assert needs([validator]) == ("Compliance Officer",)
    assert needs([], "inconclusive") == ("an override of the inconclusive gate by a Model Risk Validator",
                                         "Compliance Officer and Model Risk Validator")
    assert needs([validator, RecordedDecision(2, r.COMPLIANCE_OFFICER, Decision.APPROVE)]) == ()
    assert needs([RecordedDecision(2, r.COMPLIANCE_OFFICER, Decision.REJECT)]) == ()
    loose = ApprovalRule(min_approvers=2)
    assert still_needed(loose, evaluate(loose, decisions=[], gate_verdict="passed")) == ("2 more approvers",)
