"""The pure erasure rules: every transition, deadline edge, duty, hold, plan, crash point and backup case."""

import itertools
import json
import re
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.rules import erasure as er
from governance.rules.erasure import (
    COMPLAINT_ROUTE,
    DEADLINE_STATES,
    FINAL_STATES,
    KEEPS_OUT_STATES,
    OPEN_STATES,
    STEPS,
    TRANSITIONS,
    Action,
    Discovery,
    DownstreamModelVersion,
    DownstreamRelease,
    DutyRefused,
    ErasedMatch,
    ErasureRefused,
    ErasureReview,
    ExceptionGround,
    ExecutionProgress,
    Extension,
    ExternalDataset,
    ExternalStorage,
    GateResultAction,
    Ground,
    HoldScope,
    KeyState,
    LegalHold,
    MasterKeyRotation,
    ProgressInconsistent,
    RefusalGround,
    ReuploadPolicy,
    ReviewDecision,
    ReviewState,
    SnapshotAction,
    SnapshotProgress,
    State,
    Step,
    StoredGateRun,
    StoredSnapshot,
    SuccessorFacts,
    TransitionRefused,
    Verification,
)
from governance.rules.limits import JUSTIFICATION_MIN_LENGTH

UTC = timezone.utc
REF = "ER-2026-0007"
OTHER = "ER-2026-0008"
# A keyed subject hash as the subject index stores it: it must never reach a message.
SUBJECT_KEY = "9f2c" * 16
HEX_RUN = re.compile(r"[0-9a-f]{16,}", re.IGNORECASE)
JUST = "Retention required by EU AI Act Art. 19 (logs)."


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def assert_safe(message):
    """A message may name references, ids, counts and dates — never anything like a subject hash."""
    assert isinstance(message, str)
    assert SUBJECT_KEY not in message
    assert not HEX_RUN.search(message), message


# --- purity -------------------------------------------------------------------------------------


def test_rules_import_no_django_and_nothing_outside_the_standard_library():
    code = (
        "import sys, governance.rules.erasure as e\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'rest_framework', 'audit', 'reports'}"
        " or (m.startswith('governance') and m not in {'governance', 'governance.rules', 'governance.rules.limits',"
        " 'governance.rules.erasure'}))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=".")
    assert out.stdout.strip() == "[]"


def test_package_docstring_is_exactly_the_shared_one():
    import governance.rules

    assert governance.rules.__doc__ == "Pure rules of the governance domain: no ORM, no services, no selectors."


def test_justification_limit_is_defined_once_and_used():
    assert JUSTIFICATION_MIN_LENGTH == 10
    assert er.JUSTIFICATION_MIN_LENGTH is JUSTIFICATION_MIN_LENGTH
    assert not hasattr(er, "MIN_JUSTIFICATION")


# --- references ---------------------------------------------------------------------------------


def test_reference_format():
    assert er.format_reference(year=2026, sequence=7) == "ER-2026-0007"
    assert er.format_reference(year=2026, sequence=9999) == "ER-2026-9999"
    assert er.format_reference(year=2026, sequence=10000) == "ER-2026-10000"


@pytest.mark.parametrize(
    "year,sequence", [(999, 1), (10000, 1), (2026, 0), (2026, -1), (2026, True), ("2026", 1), (2026, 1.0)]
)
def test_reference_format_refuses_bad_parts(year, sequence):
    with pytest.raises(ValueError):
        er.format_reference(year=year, sequence=sequence)


@given(st.integers(1000, 9999), st.integers(1, 10**7))
def test_reference_round_trip(year, sequence):
    ref = er.format_reference(year=year, sequence=sequence)
    assert er.parse_reference(ref) == (year, sequence)
    assert_safe(ref)


@pytest.mark.parametrize(
    "text",
    ["ER-2026-007", "ER-2026-00007", "er-2026-0007", "ER-26-0007", "ER-2026-0000", " ER-2026-0007",
     SUBJECT_KEY, 7, None],
)
def test_reference_parse_refuses_anything_not_canonical(text):
    with pytest.raises(ValueError):
        er.parse_reference(text)


def test_next_reference():
    assert er.next_reference(year=2026) == "ER-2026-0001"
    assert er.next_reference(year=2026, last="ER-2026-0007") == "ER-2026-0008"
    assert er.next_reference(year=2027, last="ER-2026-0999") == "ER-2027-0001"
    assert er.next_reference(year=2026, last="ER-2026-9999") == "ER-2026-10000"
    with pytest.raises(ValueError):
        er.next_reference(year=2025, last="ER-2026-0001")


# --- the regulation's vocabulary ----------------------------------------------------------------


def test_grounds_are_art_17_1_a_to_f_with_their_wording():
    assert [g.value for g in Ground] == list("abcdef")
    assert Ground.CONSENT_WITHDRAWN.article == "Art. 17(1)(b)"
    assert "withdraws consent" in Ground.CONSENT_WITHDRAWN.wording
    assert "Article 21(1)" in Ground.OBJECTION.wording
    assert Ground.UNLAWFULLY_PROCESSED.wording == "the personal data have been unlawfully processed"
    assert "Article 8(1)" in Ground.CHILD_INFORMATION_SOCIETY.wording
    assert all(g.wording for g in Ground)


def test_exceptions_are_art_17_3_a_to_e_with_their_wording():
    assert [g.value for g in ExceptionGround] == list("abcde")
    assert ExceptionGround.LEGAL_OBLIGATION.article == "Art. 17(3)(b)"
    assert "legal obligation" in ExceptionGround.LEGAL_OBLIGATION.wording
    assert ExceptionGround.LEGAL_CLAIMS.wording == "for the establishment, exercise or defence of legal claims"
    assert "Article 89(1)" in ExceptionGround.ARCHIVING_RESEARCH_STATISTICS.wording
    assert "public health" in ExceptionGround.PUBLIC_HEALTH.wording
    assert "freedom of expression" in ExceptionGround.FREEDOM_OF_EXPRESSION.wording


# --- the state machine --------------------------------------------------------------------------

S, A = State, Action
EXPECTED = {
    (S.RECEIVED, A.VERIFY_IDENTITY): S.IDENTITY_VERIFIED,
    (S.RECEIVED, A.REFUSE): S.REFUSED,
    (S.IDENTITY_VERIFIED, A.PLAN): S.PLANNED,
    (S.IDENTITY_VERIFIED, A.REFUSE): S.REFUSED,
    (S.PLANNED, A.REJECT_PLAN): S.IDENTITY_VERIFIED,
    (S.PLANNED, A.APPROVE_PLAN): S.PLAN_APPROVED,
    (S.PLANNED, A.REFUSE): S.REFUSED,
    (S.PLAN_APPROVED, A.START_EXECUTION): S.EXECUTING,
    (S.EXECUTING, A.FAIL): S.ERROR,
    (S.EXECUTING, A.COMPLETE_LIVE): S.COMPLETED_LIVE,
    (S.EXECUTING, A.COMPLETE_PARTIALLY): S.PARTIALLY_COMPLETED,
    (S.ERROR, A.RESUME): S.EXECUTING,
    (S.ERROR, A.PLAN): S.PLANNED,
    (S.COMPLETED_LIVE, A.COMPLETE_BACKUPS): S.COMPLETED_BACKUPS,
    (S.PARTIALLY_COMPLETED, A.PLAN): S.PLANNED,
}


@pytest.mark.parametrize("state,action", list(itertools.product(State, Action)))
def test_every_pair_of_state_and_action(state, action):
    if (state, action) in EXPECTED:
        assert er.transition(state, action) == EXPECTED[(state, action)]
        assert action in er.allowed_actions(state)
    else:
        with pytest.raises(TransitionRefused) as exc:
            er.transition(state, action, reference=REF)
        message = str(exc.value)
        assert exc.value.state == state and exc.value.action == action
        assert state.value in message and action.value in message and REF in message
        allowed = [a for (s, a) in EXPECTED if s == state]
        if allowed:
            # Every refusal says what is allowed instead.
            assert all(a.value in message for a in allowed) and "allowed:" in message
        else:
            assert "final" in message
        assert action not in er.allowed_actions(state)
        assert_safe(message)


def test_table_is_exactly_the_documented_one():
    assert TRANSITIONS == EXPECTED
    doc = er.__doc__
    for (state, action), target in EXPECTED.items():
        assert state.value in doc and action.value in doc and target.value in doc


def test_state_sets():
    assert FINAL_STATES == {S.REFUSED, S.COMPLETED_BACKUPS}
    assert OPEN_STATES == set(State) - FINAL_STATES
    assert S.PARTIALLY_COMPLETED in OPEN_STATES and S.ERROR in OPEN_STATES and S.COMPLETED_LIVE in OPEN_STATES
    assert DEADLINE_STATES == set(State) - FINAL_STATES - {S.PARTIALLY_COMPLETED}
    assert KEEPS_OUT_STATES == set(State) - {S.RECEIVED, S.REFUSED}
    for state in FINAL_STATES:
        assert er.allowed_actions(state) == []


def _reachable(start):
    seen, todo = {start}, [start]
    while todo:
        state = todo.pop()
        for action in er.allowed_actions(state):
            target = er.transition(state, action)
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_every_state_is_reachable_and_every_open_state_can_still_end():
    assert _reachable(S.RECEIVED) == set(State)
    for state in OPEN_STATES:
        assert _reachable(state) & FINAL_STATES, state


def test_the_paths_a_person_follows():
    def walk(*actions):
        state = S.RECEIVED
        for action in actions:
            state = er.transition(state, action)
        return state

    happy = [A.VERIFY_IDENTITY, A.PLAN, A.APPROVE_PLAN, A.START_EXECUTION, A.COMPLETE_LIVE, A.COMPLETE_BACKUPS]
    assert walk(*happy) == S.COMPLETED_BACKUPS
    resumed = [A.VERIFY_IDENTITY, A.PLAN, A.APPROVE_PLAN, A.START_EXECUTION, A.FAIL, A.RESUME, A.COMPLETE_LIVE]
    assert walk(*resumed) == S.COMPLETED_LIVE
    assert walk(A.VERIFY_IDENTITY, A.PLAN, A.REJECT_PLAN, A.PLAN, A.APPROVE_PLAN) == S.PLAN_APPROVED
    # A hold keeps some data; it is released later; the rest is planned, approved and erased.
    partial = walk(A.VERIFY_IDENTITY, A.PLAN, A.APPROVE_PLAN, A.START_EXECUTION, A.COMPLETE_PARTIALLY)
    assert partial == S.PARTIALLY_COMPLETED
    assert walk(A.VERIFY_IDENTITY, A.PLAN, A.APPROVE_PLAN, A.START_EXECUTION, A.COMPLETE_PARTIALLY,
                A.PLAN, A.APPROVE_PLAN, A.START_EXECUTION, A.COMPLETE_LIVE, A.COMPLETE_BACKUPS) == S.COMPLETED_BACKUPS
    assert walk(A.VERIFY_IDENTITY, A.PLAN, A.APPROVE_PLAN, A.START_EXECUTION, A.FAIL, A.PLAN) == S.PLANNED
    assert walk(A.REFUSE) == S.REFUSED
    # Nothing is destroyed without an approved plan: execution starts only from plan_approved.
    assert [s for (s, a) in TRANSITIONS if a == A.START_EXECUTION] == [S.PLAN_APPROVED]


def test_unknown_names_are_a_value_error_not_a_refusal():
    with pytest.raises(ValueError):
        er.transition("limbo", "plan")
    with pytest.raises(ValueError):
        er.transition("received", "erase_everything")


def test_refusal_message_refuses_a_hash_as_reference():
    with pytest.raises(ValueError):
        er.transition(S.REFUSED, A.PLAN, reference=SUBJECT_KEY)


@given(st.lists(st.sampled_from(list(Action)), max_size=20))
def test_any_walk_stays_in_the_graph(actions):
    state = S.RECEIVED
    for action in actions:
        try:
            new = er.transition(state, action)
        except TransitionRefused:
            assert (state, action) not in TRANSITIONS
            continue
        assert (state, action) in TRANSITIONS and state not in FINAL_STATES
        state = new


# --- duplicates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(State))
def test_is_open(state):
    assert er.is_open(state) == (state not in {S.REFUSED, S.COMPLETED_BACKUPS})


def test_duplicate_open_request_is_refused_naming_the_reference_only():
    er.check_not_duplicate([])
    er.check_not_duplicate([("ER-2025-0001", S.COMPLETED_BACKUPS), ("ER-2025-0002", S.REFUSED)])
    with pytest.raises(ErasureRefused) as exc:
        er.check_not_duplicate([("ER-2025-0001", S.COMPLETED_BACKUPS), (REF, S.PARTIALLY_COMPLETED)])
    assert REF in str(exc.value) and "partially_completed" in str(exc.value)
    assert_safe(str(exc.value))
    with pytest.raises(ValueError):
        er.check_not_duplicate([(SUBJECT_KEY, S.RECEIVED)])


# --- months and deadlines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "received,due",
    [
        (utc(2026, 1, 31, 15, 0), utc(2026, 2, 28, 15, 0)),  # no 31 Feb: the last day of February
        (utc(2024, 1, 31, 15, 0), utc(2024, 2, 29, 15, 0)),  # leap year
        (utc(2026, 1, 29, 9, 30), utc(2026, 2, 28, 9, 30)),
        (utc(2024, 1, 29, 9, 30), utc(2024, 2, 29, 9, 30)),
        (utc(2026, 1, 28, 0, 0), utc(2026, 2, 28, 0, 0)),
        (utc(2026, 2, 28, 12, 0), utc(2026, 3, 28, 12, 0)),  # not "end of month to end of month"
        (utc(2024, 2, 29, 12, 0), utc(2024, 3, 29, 12, 0)),
        (utc(2026, 3, 31, 23, 59, 59, 999999), utc(2026, 4, 30, 23, 59, 59, 999999)),
        (utc(2026, 5, 31, 0, 0), utc(2026, 6, 30, 0, 0)),
        (utc(2026, 12, 31, 8, 0), utc(2027, 1, 31, 8, 0)),  # across the year
        (utc(2026, 3, 9, 10, 0), utc(2026, 4, 9, 10, 0)),  # the EDPB's plain case
        (utc(2100, 1, 31, 1, 0), utc(2100, 2, 28, 1, 0)),  # 2100 is not a leap year
        (utc(2000, 1, 31, 1, 0), utc(2000, 2, 29, 1, 0)),  # 2000 is
    ],
)
def test_due_at_is_one_calendar_month(received, due):
    assert er.due_at(received) == due
    assert er.due_at(received).tzinfo == UTC


def test_due_at_counts_in_utc_whatever_zone_the_time_is_given_in():
    cet = timezone(timedelta(hours=1))
    # 31 Jan 00:30 in Paris is 30 Jan 23:30 UTC: the UTC calendar decides (30 Feb → 28 Feb).
    assert er.due_at(datetime(2026, 1, 31, 0, 30, tzinfo=cet)) == utc(2026, 2, 28, 23, 30)
    # 1 Feb 00:30 in Paris is 31 Jan 23:30 UTC.
    assert er.due_at(datetime(2026, 2, 1, 0, 30, tzinfo=cet)) == utc(2026, 2, 28, 23, 30)
    ny = timezone(timedelta(hours=-5))
    assert er.due_at(datetime(2026, 1, 31, 20, 0, tzinfo=ny)) == utc(2026, 3, 1, 1, 0)  # 1 Feb 01:00 UTC
    with pytest.raises(ValueError):
        er.due_at(datetime(2026, 1, 31, 15, 0))  # naive
    with pytest.raises(TypeError):
        er.due_at(date(2026, 1, 31))
    with pytest.raises(ValueError):
        er.months_after(utc(2026, 1, 1), -1)


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9000, 12, 31), timezones=st.just(UTC)),
    st.integers(0, 36),
)
def test_months_after_agrees_with_dateutil(moment, months):
    # dateutil's relativedelta is an independent implementation of the same rule
    # (same day, else the month's last day; time of day kept).
    assert er.months_after(moment, months) == moment + relativedelta(months=months)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)))
def test_a_month_is_28_to_31_days_and_never_ends_early(moment):
    due = er.due_at(moment)
    assert timedelta(days=28) <= due - moment <= timedelta(days=31)
    assert due.time() == moment.time()
    assert due.day == moment.day or (due.day < moment.day and (due + timedelta(days=1)).day == 1)


def _ext(months, at, notified=None, reason=JUST):
    return Extension(months=months, reason=reason, recorded_at=at, subject_notified_at=notified or at)


RECEIVED = utc(2026, 1, 31, 15, 0)
FIRST_DUE = utc(2026, 2, 28, 15, 0)


def test_deadline_without_and_with_extensions():
    d = er.deadline(RECEIVED)
    assert (d.first_due_at, d.due_at, d.extended_months, d.extensible_months) == (FIRST_DUE, FIRST_DUE, 0, 2)
    assert er.deadline(RECEIVED, [_ext(1, utc(2026, 2, 10))]).due_at == utc(2026, 3, 31, 15, 0)
    # Counted from receipt: 31 Jan + 3 months = 30 Apr (28 Feb + 2 months would be 28 Apr).
    assert er.deadline(RECEIVED, [_ext(2, utc(2026, 2, 10))]).due_at == utc(2026, 4, 30, 15, 0)
    assert er.deadline(RECEIVED, [_ext(1, utc(2026, 2, 1)), _ext(1, utc(2026, 2, 2))]).due_at == utc(2026, 4, 30, 15, 0)


def test_deadline_refuses_stored_extensions_that_break_the_rules():
    with pytest.raises(ValueError):
        er.deadline(RECEIVED, [_ext(1, FIRST_DUE + timedelta(seconds=1))])
    with pytest.raises(ValueError):
        er.deadline(RECEIVED, [_ext(1, utc(2026, 2, 1), notified=FIRST_DUE + timedelta(seconds=1))])
    with pytest.raises(ValueError):
        er.deadline(RECEIVED, [_ext(2, utc(2026, 2, 1)), _ext(1, utc(2026, 2, 2))])
    with pytest.raises(ValueError):
        Extension(months=0, reason=JUST, recorded_at=RECEIVED, subject_notified_at=RECEIVED)


def _extend(now, months=1, extensions=(), state=S.PLANNED, notified=None, reason=JUST):
    return er.check_extension(
        state=state, received_at=RECEIVED, extensions=extensions, months=months, reason=reason,
        subject_notified_at=notified or now, now=now, reference=REF,
    )


def test_extension_up_to_the_first_deadline_and_not_a_moment_later():
    assert _extend(FIRST_DUE).due_at == utc(2026, 3, 31, 15, 0)
    assert _extend(FIRST_DUE, months=2).due_at == utc(2026, 4, 30, 15, 0)
    with pytest.raises(ErasureRefused) as exc:
        _extend(FIRST_DUE + timedelta(microseconds=1))
    assert "2026-02-28T15:00:00Z" in str(exc.value) and "Art. 12(3)" in str(exc.value)


def test_extension_cannot_be_requested_after_the_first_deadline_even_if_already_extended():
    extended = [_ext(1, utc(2026, 2, 10))]
    # Now before the extended deadline but after the first one: a second extension is too late.
    with pytest.raises(ErasureRefused, match="first deadline"):
        _extend(utc(2026, 3, 5), extensions=extended)


def test_extension_limits():
    one = [_ext(1, utc(2026, 2, 10))]
    assert _extend(utc(2026, 2, 11), extensions=one).due_at == utc(2026, 4, 30, 15, 0)
    with pytest.raises(ErasureRefused, match="at most 2 further months") as exc:
        _extend(utc(2026, 2, 11), months=2, extensions=one)
    assert "2026-04-30T15:00:00Z" in str(exc.value)
    two = [_ext(2, utc(2026, 2, 10))]
    with pytest.raises(ErasureRefused, match="already extended by 2 months"):
        _extend(utc(2026, 2, 11), extensions=two)
    for bad in (0, -1, 3, True, 1.5):
        with pytest.raises(ErasureRefused):
            _extend(utc(2026, 2, 11), months=bad)


def test_extension_needs_a_reason_and_a_timely_notification():
    with pytest.raises(ErasureRefused, match="justification"):
        _extend(utc(2026, 2, 11), reason="busy")
    assert _extend(utc(2026, 2, 11), reason="x" * JUSTIFICATION_MIN_LENGTH).extended_months == 1
    with pytest.raises(ErasureRefused):
        _extend(utc(2026, 2, 11), reason=" " * 20)
    with pytest.raises(ErasureRefused, match="told"):
        _extend(utc(2026, 2, 11), notified=utc(2026, 2, 12))  # told in the future
    with pytest.raises(ErasureRefused, match="told"):
        _extend(utc(2026, 2, 11), notified=RECEIVED - timedelta(seconds=1))  # before receipt
    assert _extend(utc(2026, 2, 11), notified=RECEIVED).extended_months == 1


@pytest.mark.parametrize("state", list(State))
def test_extension_only_while_the_deadline_runs(state):
    if state in DEADLINE_STATES:
        assert _extend(utc(2026, 2, 11), state=state).extended_months == 1
    else:
        with pytest.raises(ErasureRefused, match="no longer runs"):
            _extend(utc(2026, 2, 11), state=state)


def test_overdue():
    d = er.deadline(RECEIVED)
    assert not d.overdue(FIRST_DUE)
    assert d.overdue(FIRST_DUE + timedelta(microseconds=1))
    for state in State:
        assert er.is_overdue(state, d, FIRST_DUE + timedelta(days=1)) == (state in DEADLINE_STATES)


# --- identity and duties ------------------------------------------------------------------------


def test_identity_verification():
    ok = dict(received_at=RECEIVED, verified_by=2, verified_at=utc(2026, 2, 1), evidence_reference="  DPO-2026-113 ",
              now=utc(2026, 2, 1, 1))
    assert er.check_identity_verification(**ok) == "DPO-2026-113"
    for change, match in [
        (dict(verified_at=RECEIVED - timedelta(seconds=1)), "after the request"),
        (dict(verified_at=utc(2026, 2, 2)), "future"),
        (dict(evidence_reference="   "), "Name the evidence"),
        (dict(evidence_reference=None), "Name the evidence"),
        (dict(evidence_reference="x" * 201), "one line"),
        (dict(evidence_reference="passport\nno. 123"), "one line"),
    ]:
        with pytest.raises(ErasureRefused, match=match):
            er.check_identity_verification(**{**ok, **change})
    assert er.check_identity_verification(**{**ok, "evidence_reference": "x" * 200}) == "x" * 200
    with pytest.raises(ValueError):
        er.check_identity_verification(**{**ok, "verified_by": 0})


@pytest.mark.parametrize(
    "recorded,verified,approver,single", list(itertools.product([1, 2, 3], [1, 2, 3], [1, 2, 3], [False, True]))
)
def test_plan_approval_segregation(recorded, verified, approver, single):
    allowed = single or approver not in {recorded, verified}
    people = dict(recorded_by=recorded, verified_by=verified, approved_by=approver, single_officer=single)
    if allowed:
        er.check_plan_approval(**people)
    else:
        with pytest.raises(DutyRefused) as exc:
            er.check_plan_approval(**people)
        assert "second officer" in str(exc.value)


# --- refusal ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ground", list(RefusalGround))
def test_refusal_carries_the_reason_and_the_complaint_route(ground):
    r = er.refusal(reference=REF, ground=ground, reason="  The same request was answered twice this month. ")
    assert r.reason == "The same request was answered twice this month."
    assert "lodge a complaint with a supervisory authority and seek a judicial remedy" in r.notice
    assert r.complaint_route == COMPLAINT_ROUTE and REF in r.notice and ground.article in r.notice
    assert_safe(r.notice)


def test_refusal_needs_a_reason_and_may_name_the_authority():
    with pytest.raises(ErasureRefused):
        er.refusal(reference=REF, ground=RefusalGround.EXCESSIVE, reason="no")
    r = er.refusal(reference=REF, ground="manifestly_unfounded", reason="The request names no data of ours.",
                   supervisory_authority="the CNIL")
    assert r.complaint_route.endswith("The supervisory authority is the CNIL.")
    assert RefusalGround.MANIFESTLY_UNFOUNDED.article.endswith("(GDPR Art. 12(5))")


# --- legal holds --------------------------------------------------------------------------------

NOW = utc(2026, 2, 10, 12, 0)


def hold(
    hold_id=1, scope=HoldScope.SNAPSHOT, target=10, *, ground=ExceptionGround.LEGAL_OBLIGATION, confirmed=True,
    released=None, review_on=date(2026, 12, 31), request_reference=None, recorded_by=1, recorded_at=utc(2026, 2, 1),
):
    return LegalHold(
        hold_id=hold_id, scope=scope, target_id=target, ground=ground, justification=JUST, review_on=review_on,
        recorded_by=recorded_by, recorded_at=recorded_at, request_reference=request_reference,
        confirmed_by=2 if confirmed else None, confirmed_at=utc(2026, 2, 2) if confirmed else None,
        released_at=released,
    )


def test_hold_review_date_bounds():
    new = hold(confirmed=False, recorded_at=NOW)
    er.check_hold(replace(new, review_on=date(2026, 2, 11)), now=NOW)  # tomorrow
    er.check_hold(replace(new, review_on=date(2027, 2, 10)), now=NOW)  # twelve months
    for review_on in (date(2026, 2, 10), date(2026, 2, 9), date(2027, 2, 11)):
        with pytest.raises(ErasureRefused, match="between 2026-02-11 and 2027-02-10"):
            er.check_hold(replace(new, review_on=review_on), now=NOW)
    # Twelve months from 29 Feb ends on 28 Feb.
    leap = replace(new, recorded_at=utc(2024, 2, 29, 9), review_on=date(2025, 2, 28))
    er.check_hold(leap, now=utc(2024, 2, 29, 10))
    with pytest.raises(ErasureRefused):
        er.check_hold(replace(leap, review_on=date(2025, 3, 1)), now=utc(2024, 2, 29, 10))
    with pytest.raises(TypeError):
        replace(new, review_on=datetime(2026, 6, 1, tzinfo=UTC))


def test_hold_recording_rules():
    new = hold(confirmed=False, recorded_at=NOW)
    with pytest.raises(ErasureRefused, match="justification"):
        er.check_hold(replace(new, justification="AI Act"), now=NOW)
    er.check_hold(replace(new, justification="x" * 10), now=NOW)
    with pytest.raises(ErasureRefused, match="unconfirmed"):
        er.check_hold(hold(recorded_at=NOW), now=NOW)
    with pytest.raises(ErasureRefused, match="future"):
        er.check_hold(new, now=NOW - timedelta(seconds=1))
    with pytest.raises(ValueError):
        replace(new, confirmed_by=2)  # who without when
    with pytest.raises(ValueError):
        replace(new, request_reference=SUBJECT_KEY)
    with pytest.raises(ValueError):
        replace(new, ground="z")


def test_hold_confirmation_by_a_second_officer():
    new = hold(confirmed=False, recorded_by=1)
    er.check_hold_confirmation(new, confirmed_by=2, now=NOW)
    with pytest.raises(DutyRefused, match="second officer"):
        er.check_hold_confirmation(new, confirmed_by=1, now=NOW)
    er.check_hold_confirmation(new, confirmed_by=1, now=NOW, single_officer=True)
    with pytest.raises(ErasureRefused, match="already confirmed"):
        er.check_hold_confirmation(hold(), confirmed_by=3, now=NOW)
    with pytest.raises(ErasureRefused, match="released"):
        er.check_hold_confirmation(replace(new, released_at=NOW), confirmed_by=2, now=NOW)
    with pytest.raises(ErasureRefused, match="review date"):
        er.check_hold_confirmation(replace(new, review_on=NOW.date()), confirmed_by=2, now=NOW)
    with pytest.raises(ErasureRefused):
        er.check_hold_confirmation(new, confirmed_by=2, now=utc(2026, 1, 1))


def test_an_unconfirmed_or_released_hold_protects_nothing():
    assert not hold(confirmed=False).protects(NOW)
    assert hold().protects(NOW)
    assert not hold().protects(utc(2026, 2, 1, 12))  # before its confirmation
    assert not hold(released=utc(2026, 2, 5)).protects(NOW)
    assert hold(released=utc(2026, 3, 1)).protects(NOW)
    # An overdue review does not release the hold; it is flagged.
    overdue = hold(review_on=date(2026, 2, 5))
    assert overdue.protects(NOW) and overdue.review_overdue(NOW)


def test_hold_release():
    er.check_hold_release(hold(), reason="The claim was settled on 1 Feb.", now=NOW)
    with pytest.raises(ErasureRefused):
        er.check_hold_release(hold(), reason="done", now=NOW)
    with pytest.raises(ErasureRefused, match="already released"):
        er.check_hold_release(hold(released=NOW), reason="The claim was settled.", now=NOW)


def test_hold_scope():
    snap = hold(scope=HoldScope.SNAPSHOT, target=10)
    ds = hold(scope=HoldScope.DATASET, target=3)
    mine = hold(scope=HoldScope.DATASET, target=3, request_reference=REF)
    assert snap.covers(dataset_version_id=10, dataset_id=3, reference=REF)
    assert not snap.covers(dataset_version_id=11, dataset_id=3, reference=REF)
    assert ds.covers(dataset_version_id=11, dataset_id=3, reference=REF)
    assert not ds.covers(dataset_version_id=10, dataset_id=4, reference=REF)
    assert mine.covers(dataset_version_id=11, dataset_id=3, reference=REF)
    assert not mine.covers(dataset_version_id=11, dataset_id=3, reference=OTHER)


# --- the plan -----------------------------------------------------------------------------------


def snap(version, dataset=1, rows=100, subject=2, key=KeyState.LIVE, runs=(), destroyed_at=None):
    return StoredSnapshot(dataset_version_id=version, dataset_id=dataset, row_count=rows, subject_rows=subject,
                          key_state=key, key_destroyed_at=destroyed_at, gate_runs_in_use=runs)


def mixed_discovery():
    return Discovery(
        snapshots=(
            snap(10, dataset=1, rows=1000, subject=3),  # plain: redact
            snap(11, dataset=1, key=KeyState.DESTROYED, destroyed_at=utc(2026, 1, 3, 8)),  # skip
            snap(12, dataset=2, subject=1),  # under a snapshot hold
            snap(13, dataset=3, rows=50, subject=5),  # under a dataset hold
            snap(14, dataset=4, runs=(71, 70)),  # a queued/running gate run reads it: wait
            snap(15, dataset=5, subject=1),  # unconfirmed hold: protects nothing, redact
            snap(16, dataset=3, runs=(72,)),  # held AND in use: kept, no waiting
            snap(17, dataset=3, key=KeyState.DESTROYED),  # held AND destroyed: unreadable already
            snap(18, dataset=6, rows=4, subject=4),  # the person is every row: empty successor
        ),
        external=(
            ExternalDataset(dataset_version_id=30, storage=ExternalStorage.OPENLINEAGE),
            ExternalDataset(dataset_version_id=20, storage=ExternalStorage.EXTERNAL),
        ),
        model_versions=(
            DownstreamModelVersion(model_version_id=8, training_run_ids=(5, 6), dataset_version_ids=(12, 10),
                                   releases=(DownstreamRelease(41, "staging"), DownstreamRelease(40, "production"))),
            DownstreamModelVersion(model_version_id=7, training_run_ids=(4,), dataset_version_ids=(11,)),
        ),
        gate_runs=(
            StoredGateRun(gate_run_id=60, dataset_version_id=10, dataset_id=1, subject_rows=3),  # scrub
            # Kept with its held snapshot.
            StoredGateRun(gate_run_id=61, dataset_version_id=13, dataset_id=3, subject_rows=5),
        ),
    )


def mixed_holds():
    return (
        hold(1, HoldScope.SNAPSHOT, 12, ground=ExceptionGround.LEGAL_CLAIMS),
        hold(2, HoldScope.DATASET, 3, ground=ExceptionGround.LEGAL_OBLIGATION, review_on=date(2026, 2, 1)),
        hold(3, HoldScope.SNAPSHOT, 15, confirmed=False),
        hold(4, HoldScope.SNAPSHOT, 10, request_reference=OTHER),  # another person's claim
        hold(5, HoldScope.SNAPSHOT, 14, released=utc(2026, 2, 5)),  # released
    )


def test_plan_of_a_mixed_discovery():
    p = er.plan(reference=REF, discovery=mixed_discovery(), holds=mixed_holds(), now=NOW)
    by_id = {s.dataset_version_id: s for s in p.snapshots}
    assert [s.dataset_version_id for s in p.snapshots] == list(range(10, 19))
    expect = {
        10: (SnapshotAction.REDACT, 3, 997, (), ()),
        11: (SnapshotAction.SKIP_ALREADY_DESTROYED, 0, None, (), ()),
        12: (SnapshotAction.KEEP_UNDER_HOLD, 0, None, (1,), ()),
        13: (SnapshotAction.KEEP_UNDER_HOLD, 0, None, (2,), ()),
        14: (SnapshotAction.WAIT_FOR_GATE_RUN, 2, 98, (), (70, 71)),
        15: (SnapshotAction.REDACT, 1, 99, (), ()),
        16: (SnapshotAction.KEEP_UNDER_HOLD, 0, None, (2,), ()),
        17: (SnapshotAction.SKIP_ALREADY_DESTROYED, 0, None, (), ()),
        18: (SnapshotAction.REDACT, 4, 0, (), ()),
    }
    for version, (action, removed, successor, holds, runs) in expect.items():
        s = by_id[version]
        assert (s.action, s.rows_to_remove, s.successor_rows, s.hold_ids, s.gate_run_ids) == (
            action, removed, successor, holds, runs), version
        assert str(version) in s.reason
        assert_safe(s.reason)
    assert "destroyed on 2026-01-03T08:00:00Z" in by_id[11].reason
    assert "legal hold #1 (Art. 17(3)(e), review on 2026-12-31)" in by_id[12].reason
    assert "3 rows" in by_id[10].reason and "997 of 1,000 rows remain" in by_id[10].reason
    assert "gate runs 70, 71" in by_id[14].reason
    assert p.rows_to_remove == 3 + 2 + 1 + 4

    assert [(t.dataset_version_id, t.storage) for t in p.recipient_tasks] == [
        (20, ExternalStorage.EXTERNAL), (30, ExternalStorage.OPENLINEAGE)]
    assert all("owner must" in t.message and "Art. 19" in t.message for t in p.recipient_tasks)
    assert "external reference" in p.recipient_tasks[0].message and "OpenLineage" in p.recipient_tasks[1].message

    assert [r.model_version_id for r in p.reviews] == [7, 8]
    r8 = p.reviews[1]
    assert (r8.training_run_ids, r8.dataset_version_ids, r8.release_ids) == ((5, 6), (10, 12), (40, 41))
    assert "1 production release (40); 1 staging release (41)" in r8.message
    assert "no releases" in p.reviews[0].message

    assert [(g.gate_run_id, g.action, g.rows, g.hold_ids) for g in p.gate_results] == [
        (60, GateResultAction.SCRUB, 3, ()), (61, GateResultAction.KEEP_UNDER_HOLD, 5, (2,))]

    assert p.outcome == S.PARTIALLY_COMPLETED and p.completion_action == A.COMPLETE_PARTIALLY
    assert any("#3" in w and "not confirmed" in w for w in p.warnings)
    assert any("#2" in w and "2026-02-01" in w and "review" in w for w in p.warnings)
    assert not any("#1" in w or "#4" in w or "#5" in w for w in p.warnings)
    summary = p.summary()
    assert summary.startswith(f"Erasure request {REF}: 3 snapshots to redact, 1 waiting for gate runs, 3 kept under "
                              "legal hold, 2 already destroyed, 10 rows to remove")
    assert "outcome partially_completed" in summary
    for message in [summary, *p.warnings, *(t.message for t in p.recipient_tasks), *(r.message for r in p.reviews),
                    *(g.reason for g in p.gate_results)]:
        assert_safe(message)
    data = p.as_json()
    assert json.loads(json.dumps(data)) == data
    assert data["outcome"] == "partially_completed" and data["snapshots"][0]["action"] == "redact"


def test_plan_without_holds_completes_live():
    p = er.plan(reference=REF, discovery=mixed_discovery(), now=NOW)
    assert p.outcome == S.COMPLETED_LIVE and p.completion_action == A.COMPLETE_LIVE
    assert not any(s.action == SnapshotAction.KEEP_UNDER_HOLD for s in p.snapshots)
    assert [g.action for g in p.gate_results] == [GateResultAction.SCRUB, GateResultAction.SCRUB]


def test_a_hold_for_another_request_or_a_released_or_unconfirmed_hold_does_not_keep():
    others = (hold(target=10, request_reference=OTHER), hold(target=10, released=NOW), hold(target=10, confirmed=False))
    for h in others:
        p = er.plan(reference=REF, discovery=Discovery(snapshots=(snap(10),)), holds=(h,), now=NOW)
        assert p.snapshots[0].action == SnapshotAction.REDACT and p.outcome == S.COMPLETED_LIVE
    mine = hold(target=10, request_reference=REF)
    p = er.plan(reference=REF, discovery=Discovery(snapshots=(snap(10),)), holds=(mine,), now=NOW)
    assert p.snapshots[0].action == SnapshotAction.KEEP_UNDER_HOLD


def test_plan_of_nothing_found():
    p = er.plan(reference=REF, discovery=Discovery(), now=NOW)
    assert p.outcome == S.COMPLETED_LIVE and p.snapshots == () and p.rows_to_remove == 0
    assert p.warnings == ("Nothing Custos holds or references contains the person.",)


def test_bad_facts_are_refused():
    with pytest.raises(ValueError):
        Discovery(snapshots=(snap(10), snap(10)))
    with pytest.raises(ValueError):
        Discovery(snapshots=(snap(10),), external=(ExternalDataset(10, "external"),))
    with pytest.raises(ValueError):
        snap(10, rows=1, subject=2)
    with pytest.raises(ValueError):
        snap(10, subject=0)
    with pytest.raises(ValueError):
        snap(10, destroyed_at=NOW)  # a live key with a destruction time
    with pytest.raises(ValueError):
        snap(10, runs=(1, 1))
    with pytest.raises(ValueError):
        twice = (DownstreamRelease(1, "production"), DownstreamRelease(1, "staging"))
        DownstreamModelVersion(1, (1,), (1,), releases=twice)
    with pytest.raises(ValueError):
        er.plan(reference=SUBJECT_KEY, discovery=Discovery(), now=NOW)
    with pytest.raises(ValueError):
        er.plan(reference=REF, discovery=Discovery(), holds=(hold(1), hold(1)), now=NOW)


ids = st.integers(1, 12)


@st.composite
def discoveries(draw):
    versions = draw(st.lists(ids, unique=True, max_size=8))
    snapshots = []
    for v in versions:
        subject = draw(st.integers(1, 5))
        destroyed = draw(st.booleans())
        snapshots.append(snap(
            v, dataset=draw(st.integers(1, 4)), rows=subject + draw(st.integers(0, 50)), subject=subject,
            key=KeyState.DESTROYED if destroyed else KeyState.LIVE,
            runs=tuple(draw(st.lists(st.integers(1, 5), unique=True, max_size=2))),
        ))
    external = [ExternalDataset(v, draw(st.sampled_from(list(ExternalStorage))))
                for v in draw(st.lists(st.integers(20, 25), unique=True, max_size=3))]
    models = []
    for m in draw(st.lists(st.integers(1, 6), unique=True, max_size=3)):
        envs = draw(st.lists(st.sampled_from(["production", "staging"]), max_size=2))
        models.append(DownstreamModelVersion(
            m, (m,), tuple(draw(st.lists(ids, unique=True, min_size=1, max_size=3))),
            releases=tuple(DownstreamRelease(m * 10 + i, env) for i, env in enumerate(envs)),
        ))
    runs = [StoredGateRun(g, draw(ids), draw(st.integers(1, 4)), draw(st.integers(1, 5)))
            for g in draw(st.lists(st.integers(50, 60), unique=True, max_size=3))]
    return Discovery(tuple(snapshots), tuple(external), tuple(models), tuple(runs))


@st.composite
def hold_sets(draw):
    out = []
    for i in draw(st.lists(st.integers(1, 9), unique=True, max_size=4)):
        scope = draw(st.sampled_from(list(HoldScope)))
        out.append(hold(i, scope, draw(ids) if scope == HoldScope.SNAPSHOT else draw(st.integers(1, 4)),
                        confirmed=draw(st.booleans()), released=draw(st.sampled_from([None, utc(2026, 2, 5)])),
                        request_reference=draw(st.sampled_from([None, REF, OTHER]))))
    return tuple(out)


@settings(max_examples=300)
@given(discoveries(), hold_sets(), st.randoms())
def test_plan_invariants(discovery, holds, rnd):
    p = er.plan(reference=REF, discovery=discovery, holds=holds, now=NOW)
    assert [s.dataset_version_id for s in p.snapshots] == sorted(s.dataset_version_id for s in discovery.snapshots)
    for fact, item in zip(discovery.snapshots, p.snapshots):
        protecting = [h for h in holds if h.protects(NOW) and h.covers(
            dataset_version_id=fact.dataset_version_id, dataset_id=fact.dataset_id, reference=REF)]
        if fact.key_state == KeyState.DESTROYED:
            assert item.action == SnapshotAction.SKIP_ALREADY_DESTROYED
        elif protecting:
            assert item.action == SnapshotAction.KEEP_UNDER_HOLD
            assert item.hold_ids == tuple(sorted(h.hold_id for h in protecting))
        elif fact.gate_runs_in_use:
            assert item.action == SnapshotAction.WAIT_FOR_GATE_RUN and item.gate_run_ids == fact.gate_runs_in_use
        else:
            assert item.action == SnapshotAction.REDACT
        if item.action in (SnapshotAction.REDACT, SnapshotAction.WAIT_FOR_GATE_RUN):
            assert item.rows_to_remove == fact.subject_rows
            assert item.successor_rows == fact.row_count - fact.subject_rows
        else:
            assert item.rows_to_remove == 0 and item.successor_rows is None
        # Only a confirmed, unreleased hold of this request (or of all) ever keeps anything.
        for h in item.hold_ids:
            assert next(x for x in holds if x.hold_id == h).protects(NOW)
    kept = any(s.action == SnapshotAction.KEEP_UNDER_HOLD for s in p.snapshots) or any(
        g.action == GateResultAction.KEEP_UNDER_HOLD for g in p.gate_results)
    assert p.outcome == (S.PARTIALLY_COMPLETED if kept else S.COMPLETED_LIVE)
    assert len(p.recipient_tasks) == len(discovery.external) and len(p.reviews) == len(discovery.model_versions)
    assert len(p.gate_results) == len(discovery.gate_runs)
    # Deterministic whatever the order of the facts.
    shuffled = Discovery(*(tuple(rnd.sample(list(getattr(discovery, f)), len(getattr(discovery, f))))
                           for f in ("snapshots", "external", "model_versions", "gate_runs")))
    assert er.plan(reference=REF, discovery=shuffled, holds=tuple(rnd.sample(list(holds), len(holds))), now=NOW) == p
    for message in [p.summary(), *p.warnings, *(s.reason for s in p.snapshots), *(t.message for t in p.recipient_tasks),
                    *(r.message for r in p.reviews), *(g.reason for g in p.gate_results)]:
        assert_safe(message)


# --- what the worker does with a planned snapshot now ------------------------------------------


def _now_action(approved_fact, fresh_fact, holds_then=(), holds_now=()):
    approved = er.snapshot_action(approved_fact, holds=holds_then, reference=REF, now=NOW)
    return approved.action, er.execution_action(approved, fresh_fact, holds=holds_now, reference=REF, now=NOW).action


def test_execution_action_never_goes_beyond_what_was_approved():
    live, waiting = snap(10, dataset=3), snap(10, dataset=3, runs=(70,))
    destroyed = snap(10, dataset=3, key=KeyState.DESTROYED)
    held = (hold(target=10),)
    released = (hold(target=10, released=NOW - timedelta(hours=1)),)
    R, W, K, X = (SnapshotAction.REDACT, SnapshotAction.WAIT_FOR_GATE_RUN, SnapshotAction.KEEP_UNDER_HOLD,
                  SnapshotAction.SKIP_ALREADY_DESTROYED)
    assert _now_action(live, live) == (R, R)
    assert _now_action(live, waiting) == (R, W)  # a gate run started since
    assert _now_action(live, live, holds_now=held) == (R, K)  # a hold recorded since keeps it
    assert _now_action(live, destroyed) == (R, X)
    assert _now_action(waiting, live) == (W, R)  # the run finished: redact as approved
    assert _now_action(waiting, waiting) == (W, W)
    assert _now_action(waiting, live, holds_now=held) == (W, K)
    assert _now_action(live, live, holds_then=held) == (K, K)
    # The hold was released after approval: still kept; erasing it needs a new approved plan.
    approved = er.snapshot_action(live, holds=held, reference=REF, now=NOW)
    again = er.execution_action(approved, live, holds=released, reference=REF, now=NOW)
    assert again.action == K and again.hold_ids == (1,) and "plan again" in again.reason
    assert er.execution_action(approved, waiting, holds=released, reference=REF, now=NOW).action == K
    assert _now_action(live, destroyed, holds_then=held) == (K, X)
    assert _now_action(destroyed, destroyed) == (X, X)
    skip = er.snapshot_action(destroyed, reference=REF, now=NOW)
    with pytest.raises(ProgressInconsistent):
        er.execution_action(skip, live, reference=REF, now=NOW)
    with pytest.raises(ValueError):
        er.execution_action(skip, snap(11), reference=REF, now=NOW)


# --- execution steps and crash safety -----------------------------------------------------------

ALL_PROGRESS = [
    SnapshotProgress(w, v, c, d)
    for w, v, c, d in itertools.product([False, True], list(Verification), [False, True], [False, True])
]


def _expected_step(p):
    """The rule, written out independently of the implementation."""
    if (p.verification != Verification.PENDING and not p.successor_written) or (
        p.successor_committed and not (p.successor_written and p.verification == Verification.PASSED)
    ):
        return None  # no sequence of steps records this
    if p.predecessor_key_destroyed:
        return Step.DONE if p.successor_committed or not p.successor_written else Step.DISCARD_SUCCESSOR
    if p.successor_committed:
        return Step.DESTROY_PREDECESSOR_KEY
    if not p.successor_written:
        return Step.WRITE_SUCCESSOR
    return {Verification.PENDING: Step.VERIFY_SUCCESSOR, Verification.FAILED: Step.DISCARD_SUCCESSOR,
            Verification.PASSED: Step.COMMIT_SUCCESSOR}[p.verification]


def _progress_id(p):
    return f"{p.successor_written:d}{p.verification[0]}{p.successor_committed:d}{p.predecessor_key_destroyed:d}"


@pytest.mark.parametrize("progress", ALL_PROGRESS, ids=_progress_id)
def test_next_step_for_every_record(progress):
    expected = _expected_step(progress)
    if expected is None:
        with pytest.raises(ProgressInconsistent):
            er.next_step(progress)
        with pytest.raises(ProgressInconsistent):
            er.check_destroy(progress)
        return
    assert er.next_step(progress) == expected
    safe = progress == SnapshotProgress(True, Verification.PASSED, True, False)
    if safe:
        er.check_destroy(progress)
        assert expected == Step.DESTROY_PREDECESSOR_KEY
    else:
        with pytest.raises(ProgressInconsistent):
            er.check_destroy(progress)
        assert expected != Step.DESTROY_PREDECESSOR_KEY


def test_step_order():
    assert STEPS == (Step.WRITE_SUCCESSOR, Step.VERIFY_SUCCESSOR, Step.COMMIT_SUCCESSOR, Step.DESTROY_PREDECESSOR_KEY)
    p, seen = SnapshotProgress(), []
    while (step := er.next_step(p)) != Step.DONE:
        seen.append(step)
        p = {
            Step.WRITE_SUCCESSOR: replace(p, successor_written=True),
            Step.VERIFY_SUCCESSOR: replace(p, verification=Verification.PASSED),
            Step.COMMIT_SUCCESSOR: replace(p, successor_committed=True),
            Step.DESTROY_PREDECESSOR_KEY: replace(p, predecessor_key_destroyed=True),
        }[step]
    assert tuple(seen) == STEPS


class Crash(Exception):
    pass


class World:
    """Storage, database rows and the predecessor's key, with the sub-operations each step makes.

    Each step's database record commits atomically with what it changes in the database; files
    are written before and removed after their rows, as the real storage does. A crash may
    strike before any sub-operation.
    """

    def __init__(self, crash_at=(), fail_verifications=0):
        self.files = set()  # successor files on disk
        self.pending = None  # (file, verification) of the uncommitted successor row
        self.committed = None  # file of the committed successor
        self.key_live = True
        self.crash_at = set(crash_at)
        self.ops = 0
        self.fail_verifications = fail_verifications
        self.violations = []
        self.counter = itertools.count()

    def op(self):
        if self.ops in self.crash_at:
            self.ops += 1
            raise Crash
        self.ops += 1

    def progress(self):
        written = self.pending is not None or self.committed is not None
        if self.committed:
            verification = Verification.PASSED
        else:
            verification = self.pending[1] if self.pending else Verification.PENDING
        return SnapshotProgress(written, verification, self.committed is not None, not self.key_live)

    def check(self):
        # The invariant: the key is never gone unless a verified successor is committed.
        if not self.key_live and self.committed is None:
            self.violations.append(self.ops)

    def run_step(self, step):
        if step == Step.WRITE_SUCCESSOR:
            name = f"s{next(self.counter)}"
            self.op(); self.files.add(name)  # the encrypted file, under a new data key
            self.op(); self.pending = (name, Verification.PENDING)  # its pending row + key
        elif step == Step.VERIFY_SUCCESSOR:
            self.op()  # read back and check
            result = Verification.FAILED if self.fail_verifications else Verification.PASSED
            self.fail_verifications = max(0, self.fail_verifications - 1)
            self.op(); self.pending = (self.pending[0], result)
        elif step == Step.DISCARD_SUCCESSOR:
            name = self.pending[0]
            self.op(); self.pending = None
            self.op(); self.files.discard(name)
        elif step == Step.COMMIT_SUCCESSOR:
            self.op(); self.committed, self.pending = self.pending[0], None
        elif step == Step.DESTROY_PREDECESSOR_KEY:
            er.check_destroy(self.progress())
            self.op(); self.key_live = False
        self.check()

    def run(self, limit=100):
        """Run the worker until it is done or crashes; return whether it finished."""
        for _ in range(limit):
            step = er.next_step(self.progress())
            if step == Step.DONE:
                return True
            try:
                self.run_step(step)
            except Crash:
                return False
        raise AssertionError("the steps did not converge")

    def finish(self):
        for _ in range(50):
            if self.run():
                return
        raise AssertionError("re-runs did not finish")


def _assert_finished(world):
    assert world.violations == []
    assert not world.key_live and world.committed is not None and world.pending is None
    # The committed successor's file is there; any other file is named by no row (the sweep's).
    assert world.committed in world.files


def _ops_without_crash(**kw):
    w = World(**kw)
    w.finish()
    return w.ops


@pytest.mark.parametrize("fail_verifications", [0, 1, 2])
def test_a_crash_at_any_single_point_then_a_rerun_finishes(fail_verifications):
    total = _ops_without_crash(fail_verifications=fail_verifications)
    # write 2, verify 2, commit 1, destroy 1 sub-operations; a failure adds discard 2 + write 2 + verify 2.
    assert total == 6 + 6 * fail_verifications
    for point in range(total + 1):
        w = World(crash_at={point}, fail_verifications=fail_verifications)
        finished = w.run()
        assert finished == (point >= total)
        w.finish()
        _assert_finished(w)


@pytest.mark.parametrize("fail_verifications", [0, 1])
def test_two_crashes_at_any_points_then_reruns_finish(fail_verifications):
    total = _ops_without_crash(fail_verifications=fail_verifications) + 2
    for a, b in itertools.combinations(range(total + 2), 2):
        w = World(crash_at={a, b}, fail_verifications=fail_verifications)
        w.finish()
        _assert_finished(w)


@settings(max_examples=300)
@given(st.sets(st.integers(0, 40), max_size=10), st.integers(0, 3))
def test_any_crash_schedule_finishes_and_never_destroys_early(crashes, failures):
    w = World(crash_at=crashes, fail_verifications=failures)
    w.finish()
    _assert_finished(w)
    # Orphans are only files of crashed writes or discards: never the committed one, never a row.
    assert len(w.files - {w.committed}) <= len(crashes) + failures


def test_a_key_destroyed_outside_the_steps_means_done():
    assert er.next_step(SnapshotProgress(predecessor_key_destroyed=True)) == Step.DONE
    assert er.next_step(SnapshotProgress(True, Verification.PASSED, False, True)) == Step.DISCARD_SUCCESSOR


def test_check_successor():
    good = SuccessorFacts(decrypts=True, row_count=97, subject_rows=0, schema_matches=True)
    assert er.check_successor(predecessor_rows=100, removed_rows=3, facts=good).verification == Verification.PASSED
    assert er.check_successor(predecessor_rows=3, removed_rows=3,
                              facts=replace(good, row_count=0)).verification == Verification.PASSED
    for facts, problem in [
        (SuccessorFacts(decrypts=False), "does not decrypt"),
        (replace(good, row_count=98), "holds 98 rows, expected 97"),
        (replace(good, row_count=None), "uncounted"),
        (replace(good, subject_rows=1), "still holds 1 of the person's rows"),
        (replace(good, subject_rows=None), "uncounted"),
        (replace(good, schema_matches=False), "schema"),
    ]:
        check = er.check_successor(predecessor_rows=100, removed_rows=3, facts=facts)
        assert check.verification == Verification.FAILED
        assert any(problem in p for p in check.problems), (problem, check.problems)
    with pytest.raises(ValueError):
        er.check_successor(predecessor_rows=2, removed_rows=3, facts=good)
    with pytest.raises(ValueError):
        er.check_successor(predecessor_rows=2, removed_rows=0, facts=good)


# --- completion ---------------------------------------------------------------------------------


def test_completion_waits_for_everything_then_says_how_it_ends():
    p = er.plan(reference=REF, discovery=mixed_discovery(), holds=mixed_holds(), now=NOW)
    c = er.completion(p, ExecutionProgress())
    assert c.action is None and len(c.outstanding) == 4
    assert c.outstanding[0] == "9 snapshots not finished (10, 11, 12, 13, 14, 15, 16, 17, 18)"
    done = ExecutionProgress(
        snapshots_done=frozenset({10, 11, 14, 15, 17, 18}), snapshots_kept=frozenset({12, 13, 16}),
        gate_results_scrubbed=frozenset({60}), gate_results_kept=frozenset({61}),
        reviews_opened=frozenset({7, 8}), recipients_confirmed=frozenset({20}),
    )
    c = er.completion(p, done)
    assert c.action is None and c.outstanding == ("1 recipient not confirmed (30)",)
    assert er.completion(p, replace(done, recipients_confirmed=frozenset({20, 30}))).action == A.COMPLETE_PARTIALLY

    live = er.plan(reference=REF, discovery=mixed_discovery(), now=NOW)
    finished = replace(done, snapshots_done=frozenset(range(10, 19)), snapshots_kept=frozenset(),
                       gate_results_scrubbed=frozenset({60, 61}), gate_results_kept=frozenset(),
                       recipients_confirmed=frozenset({20, 30}))
    assert er.completion(live, finished).action == A.COMPLETE_LIVE
    # A hold recorded after approval kept a snapshot: the end is partial whatever the plan said.
    late_hold = replace(finished, snapshots_done=frozenset(range(10, 18)), snapshots_kept=frozenset({18}))
    assert er.completion(live, late_hold).action == A.COMPLETE_PARTIALLY


# --- backups ------------------------------------------------------------------------------------

LAST = utc(2026, 2, 10, 12, 0)
DUE = utc(2026, 3, 5, 9, 0)


def backups(rotations=(), now=utc(2026, 2, 20), **kw):
    return er.backup_status(last_key_destroyed_at=kw.pop("last", LAST), rotations=rotations, due_at=kw.pop("due", DUE),
                            now=now, **kw)


def rot(at, destroyed="same"):
    return MasterKeyRotation(rotated_at=at, old_key_destroyed_at=at if destroyed == "same" else destroyed)


def test_backups_unreadable_only_after_a_later_rotation_destroyed_the_old_master_key():
    assert not backups().unreadable
    assert "no master key rotation has followed" in backups().message
    b = backups([rot(utc(2026, 2, 11))])
    assert b.unreadable and b.unreadable_since == utc(2026, 2, 11) and b.action == A.COMPLETE_BACKUPS
    assert "2026-02-11T00:00:00Z" in b.message
    # Rotated after, but the old master key kept: still readable, and another rotation would not help.
    b = backups([rot(utc(2026, 2, 11), destroyed=None)], rotation_interval=timedelta(days=7))
    assert not b.unreadable and b.action is None and b.next_rotation_at is None and b.lands_within_deadline is None
    assert "not destroyed: destroy it" in b.message
    # Destroyed later than now: not yet.
    assert not backups([rot(utc(2026, 2, 11), destroyed=utc(2026, 2, 25))]).unreadable
    later = [rot(utc(2026, 2, 11), destroyed=utc(2026, 2, 25))]
    assert backups(later, now=utc(2026, 2, 25)).unreadable_since == utc(2026, 2, 25)
    # A rotation at or before the destruction retires an older key, not the one that wrapped it last.
    assert not backups([rot(LAST)]).unreadable
    assert not backups([rot(utc(2026, 2, 1))]).unreadable


def test_every_earlier_master_key_must_be_gone_too():
    earlier_kept = [rot(utc(2025, 6, 1), destroyed=None), rot(utc(2026, 2, 11))]
    b = backups(earlier_kept)
    assert not b.unreadable and "rotation(s) at 2025-06-01T00:00:00Z" in b.message
    # Unless the earliest data key was created after that older rotation: that key never wrapped it.
    assert backups(earlier_kept, earliest_key_created_at=utc(2025, 7, 1)).unreadable
    assert not backups(earlier_kept, earliest_key_created_at=utc(2025, 6, 1)).unreadable
    b = backups([rot(utc(2025, 6, 1), destroyed=utc(2026, 2, 15)), rot(utc(2026, 2, 11))])
    assert b.unreadable and b.unreadable_since == utc(2026, 2, 15)


def test_nothing_destroyed_means_nothing_to_retire():
    b = er.backup_status(last_key_destroyed_at=None, due_at=DUE, now=LAST)
    assert b.unreadable and b.unreadable_since is None


def test_scheduled_rotation_lands_within_the_deadline_or_not():
    week = timedelta(days=7)
    # Weekly from Monday 2 Feb: after a destruction on 10 Feb the next run is 16 Feb.
    b = backups(now=LAST, rotation_interval=week, rotation_anchor=utc(2026, 2, 2))
    assert b.next_rotation_at == utc(2026, 2, 16) and b.lands_within_deadline is True
    assert "within the deadline" in b.message
    monthly = timedelta(days=30)
    b = backups(now=LAST, rotation_interval=monthly, rotation_anchor=utc(2026, 2, 2))
    assert b.next_rotation_at == utc(2026, 3, 4) and b.lands_within_deadline is True
    b = backups(now=LAST, due=utc(2026, 3, 4) - timedelta(seconds=1), rotation_interval=monthly,
                rotation_anchor=utc(2026, 2, 2))
    assert b.lands_within_deadline is False and "rotate the master key before then" in b.message
    b = backups(now=LAST, due=utc(2026, 3, 4), rotation_interval=monthly, rotation_anchor=utc(2026, 2, 2))
    assert b.lands_within_deadline is True  # exactly at the deadline is within it
    # A run exactly at the destruction time does not count: the next one does.
    b = backups(now=LAST, rotation_interval=week, rotation_anchor=LAST - week)
    assert b.next_rotation_at == LAST + week
    # An anchor in the future is the next run; the latest rotation is the default anchor.
    b = backups(now=LAST, rotation_interval=week, rotation_anchor=utc(2026, 2, 12))
    assert b.next_rotation_at == utc(2026, 2, 12)
    b = backups([rot(utc(2026, 2, 1))], now=utc(2026, 2, 20), rotation_interval=week)
    assert b.next_rotation_at == utc(2026, 2, 22)
    # No schedule known: no promise.
    assert backups(now=LAST, rotation_interval=week).lands_within_deadline is None
    with pytest.raises(ValueError):
        backups(now=LAST, rotation_interval=timedelta(0), rotation_anchor=LAST)


def test_backup_inputs():
    with pytest.raises(ValueError):
        backups(now=LAST - timedelta(seconds=1))
    with pytest.raises(ValueError):
        MasterKeyRotation(rotated_at=LAST, old_key_destroyed_at=LAST - timedelta(seconds=1))
    with pytest.raises(ValueError):
        backups(earliest_key_created_at=LAST + timedelta(seconds=1))


@settings(max_examples=400)
@given(
    st.lists(
        st.tuples(st.integers(0, 100), st.one_of(st.none(), st.integers(0, 20))), max_size=5, unique_by=lambda t: t[0]
    ),
    st.integers(10, 90),
    st.one_of(st.none(), st.integers(0, 10)),
)
def test_backups_agree_with_a_brute_force_over_every_backup_time(rotations, last_day, created_day):
    """Simulate a backup taken at every hour from the key's creation to its destruction: each holds the
    data key wrapped by the master key current then; unreadable iff each such master key is destroyed."""
    base = utc(2026, 1, 1)
    rots = [MasterKeyRotation(base + timedelta(days=d), None if k is None else base + timedelta(days=d + k))
            for d, k in rotations]
    now = base + timedelta(days=130)
    last = base + timedelta(days=last_day, hours=1)
    created = None if created_day is None else base + timedelta(days=created_day)
    status = er.backup_status(last_key_destroyed_at=last, rotations=rots, due_at=now, now=now,
                              earliest_key_created_at=created)
    ordered = sorted(rots, key=lambda r: r.rotated_at)

    def retiring(t):  # the rotation that retires the master key current at t
        return next((r for r in ordered if r.rotated_at > t), None)

    # A tie (a rotation at the very instant the key was created) counts the retired key: which
    # came first is unknowable, so the rule assumes the worse.
    start = created - timedelta(microseconds=1) if created is not None else base - timedelta(days=1)
    t, readable = start, False
    while t <= last:
        r = retiring(t)
        if r is None or r.old_key_destroyed_at is None or r.old_key_destroyed_at > now:
            readable = True
            break
        t += timedelta(hours=1)
    assert status.unreadable == (not readable)


# --- erasure reviews ----------------------------------------------------------------------------


def test_review_decisions_and_their_effects():
    review = ErasureReview(reference=REF, model_version_id=8)
    effect = er.check_review_decision(review, decision="retain", justification="Anonymity assessment AA-2026-3.")
    assert (effect.revoke_releases, effect.new_releases_allowed, effect.retrain) == (False, True, False)
    effect = er.check_review_decision(review, decision="retire", justification="Cannot show it is anonymous.")
    assert effect.revoke_releases and not effect.new_releases_allowed
    effect = er.check_review_decision(review, decision=ReviewDecision.RETRAIN, justification="Retrain without them.")
    assert effect.retrain and not effect.new_releases_allowed and not effect.revoke_releases
    for decision in ReviewDecision:
        with pytest.raises(ErasureRefused, match="justification"):
            er.check_review_decision(review, decision=decision, justification="fine")
    decided = ErasureReview(REF, 8, state=ReviewState.DECIDED, decision=ReviewDecision.RETAIN)
    with pytest.raises(ErasureRefused, match="decided already"):
        er.check_review_decision(decided, decision="retire", justification="Changed our mind about it.")
    with pytest.raises(ValueError):
        ErasureReview(reference=REF, model_version_id=8, state=ReviewState.DECIDED)
    with pytest.raises(ValueError):
        ErasureReview(reference=REF, model_version_id=8, decision=ReviewDecision.RETAIN)


def test_an_open_review_blocks_release_approval():
    open_ = ErasureReview(reference=REF, model_version_id=8)
    retained = ErasureReview(reference=OTHER, model_version_id=8, state="decided", decision="retain")
    retired = ErasureReview(reference=OTHER, model_version_id=8, state="decided", decision="retire")
    retrain = ErasureReview(reference=OTHER, model_version_id=8, state="decided", decision="retrain")
    assert er.blocks_release(open_) and not er.blocks_release(retained)
    assert er.blocks_release(retired) and er.blocks_release(retrain)
    assert er.release_block_reason(8, []) is None
    assert er.release_block_reason(8, [retained]) is None
    assert er.release_block_reason(9, [open_]) is None  # another model version's review
    reason = er.release_block_reason(8, [retained, open_])
    assert reason == f"Model version 8 is under erasure review for {REF} (open): no release of it can be approved."
    assert "decided: retire" in er.release_block_reason(8, [retired])
    assert_safe(reason)


# --- staying erased -----------------------------------------------------------------------------


def test_reupload_refused_or_dropped_by_policy():
    matches = [ErasedMatch(reference=OTHER, rows=1), ErasedMatch(reference=REF, rows=2)]
    d = er.reupload_decision(policy=ReuploadPolicy.REFUSE, matches=matches)
    assert (d.accept, d.rows_to_drop, d.references) == (False, 0, (REF, OTHER))
    assert d.message == (f"The upload holds 3 rows of people erased under erasure request(s) {REF}, {OTHER}: "
                         "remove them and upload again.")
    d = er.reupload_decision(policy="drop_and_record", matches=matches)
    assert (d.accept, d.rows_to_drop) == (True, 3) and "were dropped and recorded" in d.message
    assert er.reupload_decision(policy="refuse", matches=[]) == er.ReuploadDecision(True, 0, (), "")
    for message in (d.message,):
        assert_safe(message)


def test_reupload_into_a_held_dataset_is_accepted():
    d = er.reupload_decision(policy="refuse", matches=[ErasedMatch(REF, 4, held_by=(2,))])
    assert d.accept and d.rows_to_drop == 0 and "legal hold(s) #2" in d.message
    mixed = [ErasedMatch(REF, 4, held_by=(2,)), ErasedMatch(OTHER, 1)]
    d = er.reupload_decision(policy="drop_and_record", matches=mixed)
    assert d.accept and d.rows_to_drop == 1
    d = er.reupload_decision(policy="refuse", matches=[ErasedMatch(REF, 4, held_by=(2,)), ErasedMatch(OTHER, 1)])
    assert not d.accept and OTHER in d.message and "#2" in d.message


def test_reupload_matches_name_requests_not_people():
    with pytest.raises(ValueError):
        ErasedMatch(reference=SUBJECT_KEY, rows=1)
    with pytest.raises(ValueError):
        ErasedMatch(reference=REF, rows=0)
    with pytest.raises(ValueError):
        er.reupload_decision(policy="refuse", matches=[ErasedMatch(REF, 1), ErasedMatch(REF, 2)])
    with pytest.raises(ValueError):
        er.reupload_decision(policy="ignore", matches=[])


@pytest.mark.parametrize("state", list(State))
def test_keeps_out_and_hash_purge(state):
    assert er.keeps_out(state) == (state not in {S.RECEIVED, S.REFUSED})
    closed, year = utc(2026, 3, 1), timedelta(days=365)
    due = er.hash_purge_due(state=state, closed_at=closed, now=closed + year, retention=year)
    assert due == (state in FINAL_STATES)
    early = closed + year - timedelta(microseconds=1)
    assert not er.hash_purge_due(state=state, closed_at=closed, now=early, retention=year)


def test_hash_purge_needs_a_positive_retention():
    with pytest.raises(ValueError):
        er.hash_purge_due(state=S.REFUSED, closed_at=NOW, now=NOW, retention=timedelta(0))
    with pytest.raises(ValueError):
        er.hash_purge_due(state=S.REFUSED, closed_at=NOW, now=NOW, retention=365)


# --- every message is safe ----------------------------------------------------------------------


def test_messages_of_every_refusal_are_safe():
    messages = []
    for state, action in itertools.product(State, Action):
        if (state, action) not in TRANSITIONS:
            messages.append(str(TransitionRefused(state, action, reference=REF)))
    calls = [
        lambda: _extend(FIRST_DUE + timedelta(days=1)),
        lambda: _extend(utc(2026, 2, 11), months=3),
        lambda: er.check_plan_approval(recorded_by=1, verified_by=2, approved_by=1),
        lambda: er.check_hold(hold(confirmed=False, recorded_at=NOW, review_on=date(2030, 1, 1)), now=NOW),
        lambda: er.check_hold_confirmation(hold(confirmed=False), confirmed_by=1, now=NOW),
        lambda: er.check_not_duplicate([(REF, S.EXECUTING)]),
        lambda: er.check_review_decision(ErasureReview(REF, 1), decision="retain", justification=""),
    ]
    for call in calls:
        with pytest.raises((ErasureRefused, DutyRefused)) as exc:
            call()
        messages.append(str(exc.value))
    messages.append(backups([rot(utc(2025, 6, 1), destroyed=None)], rotation_interval=timedelta(days=7)).message)
    messages.append(backups(now=LAST, rotation_interval=timedelta(days=30), rotation_anchor=utc(2026, 2, 2)).message)
    for m in messages:
        assert_safe(m)
