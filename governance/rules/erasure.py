"""The erasure workflow (GDPR Art. 17) as pure functions: states, deadlines, duties, plan, steps.

No database here. The erasure services load the rows, turn them into the facts below, ask these
functions whether a step is allowed and what follows from it, then write the change and its
ledger entry in one transaction. The worker asks :func:`next_step` before every step it takes on
a snapshot, so a crash at any point and a re-run finish the job. Keeping the rules pure lets the
tests walk every transition, every deadline edge and every crash point.

An erasure request moves::

    received ─verify_identity→ identity_verified ─plan→ planned ─approve_plan→ plan_approved
       │                           │    ↑                 │ │
       │                           │    └──reject_plan────┘ │
       └──────refuse───────────────┴──────refuse────────────┴─→ refused
    plan_approved ─start_execution→ executing ─complete_live→ completed_live ─complete_backups→ completed_backups
                                      │   ↑    └─complete_partially→ partially_completed ─plan→ planned
                                     fail resume                                  (a hold was released)
                                      ↓   │
                                      error ─plan→ planned  (the facts changed: plan again, approve again)

Anything else is refused with ``TransitionRefused`` (the API answers 409 Conflict), naming what
is allowed. A segregation-of-duties refusal is ``DutyRefused`` (403); any other rule that refuses
what was asked (a late extension, a short justification, a review date out of bounds) is
``ErasureRefused`` (400).

Times. Every time taken or returned is a timezone-aware ``datetime`` in UTC (a naive one is a
``ValueError``); days are UTC days. One calendar month after a moment is the same day of the
next month at the same time of day, or the last day of that month when that day does not exist
(Regulation 1182/71 Art. 3(2)(c), as the EDPB reads Art. 12(3) in Guidelines 01/2022): 31 Jan
15:00Z + 1 month = 28 Feb 15:00Z (29 Feb in a leap year). The time of day is kept rather than
running to the end of the day: 1182/71 would let the period run to the end of the corresponding
day, so keeping the time of receipt is never later than the law and, for a controller east of
UTC, absorbs most of the difference between its day and the UTC day. No weekend or public
holiday moves a deadline (1182/71 Art. 3(4) would move it to the next working day, but holidays
differ by Member State): Custos's deadline is never later than the legal one for that reason.

Bounds. The deadline is one month (``DEADLINE_MONTHS``); an extension adds at most two further
months in all (``MAX_EXTENSION_MONTHS``), counted from receipt, so at most receipt + 3 months. A
legal hold is reviewed at most twelve months after it is recorded (``HOLD_REVIEW_MAX_MONTHS``).
Every written justification has at least ``limits.JUSTIFICATION_MIN_LENGTH`` characters. The
evidence reference of an identity check is one line of at most 200 characters.

Messages. Every message this module builds names only erasure references (``ER-2026-0007``),
ids of Custos objects, counts and dates — never a data subject id or its keyed hash. Text that
officers write (a reason, a justification) is theirs and is carried, not inspected.
"""

import calendar
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

from config.errors import Conflict, DomainError, Refused

from .limits import JUSTIFICATION_MIN_LENGTH

UTC = timezone.utc


class TransitionRefused(Conflict):
    """A step that the request's current state does not allow (the API maps it to 409 Conflict)."""

    def __init__(self, state, action, detail=None, *, reference=None):
        self.state = State(state)
        self.action = Action(action)
        allowed = sorted(a.value for a in allowed_actions(self.state))
        who = f"Erasure request {_ref(reference)}" if reference else "An erasure request"
        message = detail or (
            f"{who} in state '{self.state}' cannot '{self.action}'"
            + (f" (allowed: {', '.join(allowed)})." if allowed else " (it is final).")
        )
        super().__init__(message)


class DutyRefused(Refused):
    """A step that segregation of duties does not allow this officer (the API answers 403)."""


class ErasureRefused(DomainError, ValueError):
    """A step the erasure rules refuse as asked (the API answers 400 with the message)."""


class ProgressInconsistent(Exception):
    """What is recorded for a snapshot cannot have come from the steps: a person must look."""


# --- time ---------------------------------------------------------------------------------------


def _utc(moment, name="time") -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(moment).__name__}.")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (Custos works in UTC).")
    return moment.astimezone(UTC)


def _utc_or_none(moment, name):
    return None if moment is None else _utc(moment, name)


def _day_of(moment, name="date") -> date:
    # datetime is a subclass of date: a review date given as a datetime would compare wrongly.
    if isinstance(moment, datetime) or not isinstance(moment, date):
        raise TypeError(f"{name} must be a date (a UTC day), not {type(moment).__name__}.")
    return moment


def months_after(moment, months: int) -> datetime:
    """Return MOMENT plus MONTHS calendar months, in UTC.

    The same day and time of day MONTHS months later, or the last day of that month when the
    day does not exist there (31 Jan + 1 month = 28 Feb, or 29 Feb in a leap year).
    """
    moment = _utc(moment)
    if not isinstance(months, int) or isinstance(months, bool) or months < 0:
        raise ValueError("months must be a whole number of months, not negative.")
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- safe message parts -------------------------------------------------------------------------

REFERENCE_PREFIX = "ER"
_REFERENCE_RE = re.compile(r"^ER-([0-9]{4})-([0-9]{4,})$")


def format_reference(*, year: int, sequence: int) -> str:
    """Return the opaque reference of the SEQUENCE-th erasure request of YEAR: ``ER-2026-0007``.

    Four digits of sequence, more when a year has more than 9,999 requests. The reference says
    nothing about the person; it is what messages, ledger entries and certificates name.
    """
    if not isinstance(year, int) or isinstance(year, bool) or not 1000 <= year <= 9999:
        raise ValueError("year must be a four-digit year.")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise ValueError("sequence must be a whole number from 1.")
    return f"{REFERENCE_PREFIX}-{year:04d}-{sequence:04d}"


def parse_reference(reference: str) -> tuple[int, int]:
    """Return (year, sequence) of a reference in its canonical form, or raise ValueError."""
    match = _REFERENCE_RE.match(reference) if isinstance(reference, str) else None
    if match is None or format_reference(year=int(match[1]), sequence=int(match[2])) != reference:
        raise ValueError("Not an erasure request reference (expected ER-<year>-<sequence>, e.g. ER-2026-0007).")
    return int(match[1]), int(match[2])


def next_reference(*, year: int, last: str | None = None) -> str:
    """Return the reference that follows LAST (the latest one issued) for a request of YEAR.

    Sequences restart at 1 each year. The service takes LAST under a lock (or retries on the
    unique constraint), so two requests never get the same reference.
    """
    if last is None:
        return format_reference(year=year, sequence=1)
    last_year, last_sequence = parse_reference(last)
    if last_year > year:
        raise ValueError(f"The latest reference {last} is from a later year than {year}.")
    return format_reference(year=year, sequence=last_sequence + 1 if last_year == year else 1)


def _ref(reference) -> str:
    # Every reference that goes into a message passes here: a keyed hash or an id handed in by
    # mistake is refused, not printed.
    parse_reference(reference)
    return reference


def _ids(ids) -> str:
    return ", ".join(str(int(i)) for i in sorted(ids))


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (plural or word + 's')}"


def _check_id(value, name):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive id.")
    return value


def _id_tuple(values, name) -> tuple[int, ...]:
    values = tuple(values)
    for v in values:
        _check_id(v, name)
    if len(set(values)) != len(values):
        raise ValueError(f"{name} lists an id twice.")
    return tuple(sorted(values))


def _check_count(value, name, minimum=0):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}.")
    return value


def _justification(text, what) -> str:
    if text is not None and not isinstance(text, str):
        raise ErasureRefused(f"{what} needs its justification as text.")
    text = (text or "").strip()
    if len(text) < JUSTIFICATION_MIN_LENGTH:
        raise ErasureRefused(f"{what} needs a written justification (at least {JUSTIFICATION_MIN_LENGTH} characters).")
    return text


# --- vocabulary of the regulation ---------------------------------------------------------------


class Ground(StrEnum):
    """The grounds of GDPR Art. 17(1) on which a data subject asks for erasure."""

    NO_LONGER_NECESSARY = "a"
    CONSENT_WITHDRAWN = "b"
    OBJECTION = "c"
    UNLAWFULLY_PROCESSED = "d"
    LEGAL_OBLIGATION_TO_ERASE = "e"
    CHILD_INFORMATION_SOCIETY = "f"

    @property
    def article(self) -> str:
        return f"Art. 17(1)({self.value})"

    @property
    def wording(self) -> str:
        return GROUND_WORDING[self]


GROUND_WORDING = {
    Ground.NO_LONGER_NECESSARY: "the personal data are no longer necessary in relation to the purposes for which "
    "they were collected or otherwise processed",
    Ground.CONSENT_WITHDRAWN: "the data subject withdraws consent on which the processing is based according to "
    "point (a) of Article 6(1), or point (a) of Article 9(2), and where there is no other legal ground for the "
    "processing",
    Ground.OBJECTION: "the data subject objects to the processing pursuant to Article 21(1) and there are no "
    "overriding legitimate grounds for the processing, or the data subject objects to the processing pursuant to "
    "Article 21(2)",
    Ground.UNLAWFULLY_PROCESSED: "the personal data have been unlawfully processed",
    Ground.LEGAL_OBLIGATION_TO_ERASE: "the personal data have to be erased for compliance with a legal obligation "
    "in Union or Member State law to which the controller is subject",
    Ground.CHILD_INFORMATION_SOCIETY: "the personal data have been collected in relation to the offer of "
    "information society services referred to in Article 8(1)",
}


class ExceptionGround(StrEnum):
    """The exceptions of GDPR Art. 17(3): erasure does not apply to the extent processing is necessary.

    For logged ML data the two that arise are (b), e.g. the EU AI Act's retention of logs
    (Art. 19) and technical documentation (Art. 18), and (e), legal claims.
    """

    FREEDOM_OF_EXPRESSION = "a"
    LEGAL_OBLIGATION = "b"
    PUBLIC_HEALTH = "c"
    ARCHIVING_RESEARCH_STATISTICS = "d"
    LEGAL_CLAIMS = "e"

    @property
    def article(self) -> str:
        return f"Art. 17(3)({self.value})"

    @property
    def wording(self) -> str:
        return EXCEPTION_WORDING[self]


EXCEPTION_WORDING = {
    ExceptionGround.FREEDOM_OF_EXPRESSION: "for exercising the right of freedom of expression and information",
    ExceptionGround.LEGAL_OBLIGATION: "for compliance with a legal obligation which requires processing by Union or "
    "Member State law to which the controller is subject or for the performance of a task carried out in the "
    "public interest or in the exercise of official authority vested in the controller",
    ExceptionGround.PUBLIC_HEALTH: "for reasons of public interest in the area of public health in accordance with "
    "points (h) and (i) of Article 9(2) as well as Article 9(3)",
    ExceptionGround.ARCHIVING_RESEARCH_STATISTICS: "for archiving purposes in the public interest, scientific or "
    "historical research purposes or statistical purposes in accordance with Article 89(1) in so far as the right "
    "referred to in paragraph 1 is likely to render impossible or seriously impair the achievement of the "
    "objectives of that processing",
    ExceptionGround.LEGAL_CLAIMS: "for the establishment, exercise or defence of legal claims",
}


# --- the state machine --------------------------------------------------------------------------


class State(StrEnum):
    RECEIVED = "received"
    IDENTITY_VERIFIED = "identity_verified"
    PLANNED = "planned"
    PLAN_APPROVED = "plan_approved"
    EXECUTING = "executing"
    COMPLETED_LIVE = "completed_live"  # live data erased; backups still readable until rotation
    COMPLETED_BACKUPS = "completed_backups"  # backups unreadable too
    PARTIALLY_COMPLETED = "partially_completed"  # erased except what confirmed legal holds keep
    REFUSED = "refused"  # Art. 12(4)/(5): with the reason and the complaint route
    ERROR = "error"  # execution stopped; resumable


class Action(StrEnum):
    VERIFY_IDENTITY = "verify_identity"
    PLAN = "plan"
    REJECT_PLAN = "reject_plan"
    APPROVE_PLAN = "approve_plan"
    START_EXECUTION = "start_execution"
    FAIL = "fail"
    RESUME = "resume"
    COMPLETE_LIVE = "complete_live"
    COMPLETE_PARTIALLY = "complete_partially"
    COMPLETE_BACKUPS = "complete_backups"
    REFUSE = "refuse"


TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.RECEIVED, Action.VERIFY_IDENTITY): State.IDENTITY_VERIFIED,
    (State.RECEIVED, Action.REFUSE): State.REFUSED,
    (State.IDENTITY_VERIFIED, Action.PLAN): State.PLANNED,
    (State.IDENTITY_VERIFIED, Action.REFUSE): State.REFUSED,
    # The approver sends a plan back (or the facts changed before approval): plan again.
    (State.PLANNED, Action.REJECT_PLAN): State.IDENTITY_VERIFIED,
    (State.PLANNED, Action.APPROVE_PLAN): State.PLAN_APPROVED,
    # Discovery can show that an Art. 17(3) exception covers everything: the answer is a refusal.
    (State.PLANNED, Action.REFUSE): State.REFUSED,
    (State.PLAN_APPROVED, Action.START_EXECUTION): State.EXECUTING,
    (State.EXECUTING, Action.FAIL): State.ERROR,
    (State.EXECUTING, Action.COMPLETE_LIVE): State.COMPLETED_LIVE,
    (State.EXECUTING, Action.COMPLETE_PARTIALLY): State.PARTIALLY_COMPLETED,
    (State.ERROR, Action.RESUME): State.EXECUTING,
    # A failure the steps cannot get past (a snapshot's file is gone, a key was destroyed
    # outside the workflow): plan again from the facts as they are now, and approve again.
    (State.ERROR, Action.PLAN): State.PLANNED,
    (State.COMPLETED_LIVE, Action.COMPLETE_BACKUPS): State.COMPLETED_BACKUPS,
    # A legal hold was released: what it kept is now owed; destroying it needs a new approved plan.
    (State.PARTIALLY_COMPLETED, Action.PLAN): State.PLANNED,
}

# States a request never leaves.
FINAL_STATES = frozenset({State.REFUSED, State.COMPLETED_BACKUPS})
# A request in these states is still open: a second request for the same person is refused
# (continue the open one). A partially completed request counts: what its holds keep is still
# owed to the person once the holds are released, and it is that request that plans it.
OPEN_STATES = frozenset(State) - FINAL_STATES
# The Art. 12(3) clock runs until the person has had the answer: the request is refused, all its
# data is erased live and in backups, or it ended with exceptions (the answer names them).
DEADLINE_STATES = frozenset(State) - FINAL_STATES - {State.PARTIALLY_COMPLETED}
# Once the identity is verified (so the request is credible) the person is kept out of new
# uploads, and stays out after completion; a refused request keeps nobody out.
KEEPS_OUT_STATES = frozenset(State) - {State.RECEIVED, State.REFUSED}


def transition(state, action, *, reference=None) -> State:
    """Return the state that ACTION leads to from STATE, or raise TransitionRefused."""
    try:
        key = (State(state), Action(action))
    except ValueError as exc:
        raise ValueError(f"Unknown state or action: {state!r}, {action!r}") from exc
    if key not in TRANSITIONS:
        raise TransitionRefused(*key, reference=reference)
    return TRANSITIONS[key]


def allowed_actions(state) -> list[Action]:
    state = State(state)
    return [a for (s, a) in TRANSITIONS if s == state]


def is_open(state) -> bool:
    """Whether a request in STATE counts as open (blocks a second request for the same person)."""
    return State(state) in OPEN_STATES


def check_not_duplicate(open_requests) -> None:
    """Raise ErasureRefused if any of OPEN_REQUESTS ((reference, state) pairs) is still open.

    The service finds the person's earlier requests by keyed hash and passes them here; the
    message names the open request, never the person.
    """
    for reference, state in sorted(open_requests, key=lambda pair: pair[0]):
        if is_open(state):
            raise ErasureRefused(
                f"Erasure request {_ref(reference)} is already open for this person (state '{State(state)}'): "
                "continue it instead of recording a second one."
            )


# --- deadline and extension (Art. 12(3)) ---------------------------------------------------------

DEADLINE_MONTHS = 1
MAX_EXTENSION_MONTHS = 2


def due_at(received_at) -> datetime:
    """Return the Art. 12(3) deadline of a request received at RECEIVED_AT: one calendar month."""
    return months_after(received_at, DEADLINE_MONTHS)


@dataclass(frozen=True)
class Extension:
    """An Art. 12(3) extension as recorded: how many further months, why, and when the person was told."""

    months: int
    reason: str
    recorded_at: datetime
    subject_notified_at: datetime

    def __post_init__(self):
        if not isinstance(self.months, int) or isinstance(self.months, bool) or self.months < 1:
            raise ValueError("An extension is by whole months, at least one.")
        object.__setattr__(self, "recorded_at", _utc(self.recorded_at, "recorded_at"))
        object.__setattr__(self, "subject_notified_at", _utc(self.subject_notified_at, "subject_notified_at"))


@dataclass(frozen=True)
class Deadline:
    """When a request is due: first after one month, later if extended in time."""

    received_at: datetime
    first_due_at: datetime
    due_at: datetime
    extended_months: int

    @property
    def extensible_months(self) -> int:
        return MAX_EXTENSION_MONTHS - self.extended_months

    def overdue(self, now) -> bool:
        """Whether NOW is past the deadline (a step at exactly ``due_at`` is in time)."""
        return _utc(now, "now") > self.due_at


def deadline(received_at, extensions=()) -> Deadline:
    """Return the deadline of a request received at RECEIVED_AT with the EXTENSIONS recorded.

    An extension adds whole months counted from receipt (31 Jan + 3 months = 30 Apr, not
    28 Feb + 2 months = 28 Apr): the period is "one month, extended by two further months".
    Stored extensions that break the rules (recorded or notified after the first deadline, more
    than two months in all) are a ValueError: :func:`check_extension` refuses them, so such rows
    were written around it.
    """
    received_at = _utc(received_at, "received_at")
    first = due_at(received_at)
    months = 0
    for ext in extensions:
        if ext.recorded_at > first or ext.subject_notified_at > first:
            raise ValueError("A stored extension was recorded or notified after the first deadline.")
        months += ext.months
    if months > MAX_EXTENSION_MONTHS:
        raise ValueError(f"Stored extensions add {months} months; at most {MAX_EXTENSION_MONTHS} are allowed.")
    return Deadline(
        received_at=received_at,
        first_due_at=first,
        due_at=months_after(received_at, DEADLINE_MONTHS + months),
        extended_months=months,
    )


def check_extension(
    *, state, received_at, extensions=(), months, reason, subject_notified_at, now, reference=None
) -> Deadline:
    """Return the new deadline if an extension by MONTHS may be recorded NOW, or raise ErasureRefused.

    Art. 12(3): "where necessary, taking into account the complexity and number of the
    requests", by at most two further months in all (one extension of 1 or 2 months, or two of
    1), with the reasons for the delay, and the person must be told within one month of
    receipt. So the extension is recorded — with the time the person was told — no later than
    the first deadline; one asked for later is refused, whatever the reason.
    """
    now = _utc(now, "now")
    subject_notified_at = _utc(subject_notified_at, "subject_notified_at")
    state = State(state)
    who = f"Erasure request {_ref(reference)}" if reference else "This erasure request"
    if state not in DEADLINE_STATES:
        raise ErasureRefused(f"{who} is '{state}': its deadline no longer runs, so it cannot be extended.")
    current = deadline(received_at, extensions)
    if now > current.first_due_at:
        raise ErasureRefused(
            f"The first deadline ({_iso(current.first_due_at)}) has passed: an extension must be recorded, and "
            "the person told, before it (GDPR Art. 12(3))."
        )
    if not isinstance(months, int) or isinstance(months, bool) or months < 1:
        raise ErasureRefused("An extension is by one or two whole months.")
    if months > current.extensible_months:
        raise ErasureRefused(
            f"{who} is already extended by {_plural(current.extended_months, 'month')}; at most "
            f"{MAX_EXTENSION_MONTHS} further months are allowed in all (so at most "
            f"{_iso(months_after(current.received_at, DEADLINE_MONTHS + MAX_EXTENSION_MONTHS))})."
        )
    _justification(reason, "An extension")
    if subject_notified_at < current.received_at or subject_notified_at > now:
        raise ErasureRefused(
            "The person is told of the extension between receipt of the request and the time it is recorded."
        )
    return deadline(
        received_at, [*extensions, Extension(months, reason, recorded_at=now, subject_notified_at=subject_notified_at)]
    )


def is_overdue(state, deadline_: Deadline, now) -> bool:
    """Whether a request in STATE has missed its deadline (only while the deadline runs)."""
    return State(state) in DEADLINE_STATES and deadline_.overdue(now)


# --- identity and segregation of duties ---------------------------------------------------------

EVIDENCE_REFERENCE_MAX_LENGTH = 200


def check_identity_verification(*, received_at, verified_by, verified_at, evidence_reference, now) -> str:
    """Return the cleaned evidence reference if the verification may be recorded, or raise ErasureRefused.

    Custos keeps who verified, when, and a reference to the evidence (a ticket or document
    number in the records office); the evidence itself (an ID document) stays outside. Anyone
    may verify, including the officer who recorded the request: the second pair of eyes is the
    plan approver, who must be neither of them (:func:`check_plan_approval`).
    """
    _check_id(verified_by, "verified_by")
    received_at, verified_at, now = _utc(received_at, "received_at"), _utc(verified_at, "verified_at"), _utc(now, "now")
    if not received_at <= verified_at <= now:
        raise ErasureRefused("The identity is verified after the request was received and not in the future.")
    text = evidence_reference.strip() if isinstance(evidence_reference, str) else ""
    if not text:
        raise ErasureRefused("Name the evidence of the identity check (a reference to where it is kept).")
    if len(text) > EVIDENCE_REFERENCE_MAX_LENGTH or any(not c.isprintable() for c in text):
        raise ErasureRefused(
            f"The evidence reference is one line of at most {EVIDENCE_REFERENCE_MAX_LENGTH} printable characters: "
            "a reference to the evidence, not the evidence."
        )
    return text


def check_plan_approval(*, recorded_by, verified_by, approved_by, single_officer: bool = False) -> None:
    """Raise DutyRefused unless APPROVED_BY may approve the plan of a request.

    The plan destroys keys, so it is approved by a second officer: not the one who recorded the
    request, and not the one who verified the requester's identity (else one person could both
    accept a forged identity and destroy that identity's data). SINGLE_OFFICER (a setting for a
    small organisation with one data protection officer) lets one person do all three; the
    steps stay distinct records.
    """
    _check_id(approved_by, "approved_by")
    if single_officer:
        return
    if approved_by == recorded_by:
        raise DutyRefused("The officer who recorded the request may not approve its plan: a second officer must.")
    if approved_by == verified_by:
        raise DutyRefused(
            "The officer who verified the requester's identity may not approve the plan: a second officer must."
        )


# --- refusal (Art. 12(4), 12(5)) ----------------------------------------------------------------


class RefusalGround(StrEnum):
    MANIFESTLY_UNFOUNDED = "manifestly_unfounded"
    EXCESSIVE = "excessive"
    IDENTITY_NOT_ESTABLISHED = "identity_not_established"
    NO_GROUND_APPLIES = "no_ground_applies"
    EXCEPTION_APPLIES = "exception_applies"

    @property
    def article(self) -> str:
        return REFUSAL_ARTICLES[self]


REFUSAL_ARTICLES = {
    RefusalGround.MANIFESTLY_UNFOUNDED: "the request is manifestly unfounded (GDPR Art. 12(5))",
    RefusalGround.EXCESSIVE: "the request is excessive, in particular because of its repetitive character "
    "(GDPR Art. 12(5))",
    RefusalGround.IDENTITY_NOT_ESTABLISHED: "the identity of the requester could not be established "
    "(GDPR Art. 11(2), 12(2) and 12(6))",
    RefusalGround.NO_GROUND_APPLIES: "none of the grounds of GDPR Art. 17(1) applies",
    RefusalGround.EXCEPTION_APPLIES: "an exception of GDPR Art. 17(3) covers all the data",
}

COMPLAINT_ROUTE = "You may lodge a complaint with a supervisory authority and seek a judicial remedy."


@dataclass(frozen=True)
class Refusal:
    """A refusal as the person receives it: the ground, the officer's reason, and where to complain."""

    ground: RefusalGround
    reason: str
    complaint_route: str
    notice: str


def refusal(*, reference, ground, reason, supervisory_authority: str = "") -> Refusal:
    """Return the refusal of request REFERENCE on GROUND with the officer's REASON, or raise ErasureRefused.

    Art. 12(4): the person is told the reasons and "the possibility of lodging a complaint with
    a supervisory authority and seeking a judicial remedy"; naming the authority (e.g. the
    controller's lead authority) is optional.
    """
    ground = RefusalGround(ground)
    reason = _justification(reason, "A refusal")
    route = COMPLAINT_ROUTE
    if supervisory_authority.strip():
        route += f" The supervisory authority is {supervisory_authority.strip()}."
    notice = f"Erasure request {_ref(reference)} is refused: {ground.article}. Reason: {reason} {route}"
    return Refusal(ground=ground, reason=reason, complaint_route=route, notice=notice)


# --- legal holds (Art. 17(3)) -------------------------------------------------------------------

HOLD_REVIEW_MAX_MONTHS = 12


class HoldScope(StrEnum):
    SNAPSHOT = "snapshot"  # one dataset version
    DATASET = "dataset"  # every version of a dataset, present and future


@dataclass(frozen=True)
class LegalHold:
    """An Art. 17(3) exception that keeps a snapshot or a whole dataset from erasure.

    ``request_reference`` limits the hold to one erasure request (a claim by or against that
    person); without it the hold applies to every request (a retention the law imposes on the
    whole dataset, such as the EU AI Act's logs). It protects nothing until a second officer
    confirms it, and nothing once released. A review date that has passed does not release it —
    destroying data the law says to keep cannot be undone, keeping it a little longer can — but
    the plan flags it.
    """

    hold_id: int
    scope: HoldScope
    target_id: int  # a dataset version id (SNAPSHOT) or a dataset id (DATASET)
    ground: ExceptionGround
    justification: str
    review_on: date
    recorded_by: int
    recorded_at: datetime
    request_reference: str | None = None
    confirmed_by: int | None = None
    confirmed_at: datetime | None = None
    released_at: datetime | None = None

    def __post_init__(self):
        _check_id(self.hold_id, "hold_id")
        _check_id(self.target_id, "target_id")
        _check_id(self.recorded_by, "recorded_by")
        object.__setattr__(self, "scope", HoldScope(self.scope))
        object.__setattr__(self, "ground", ExceptionGround(self.ground))
        _day_of(self.review_on, "review_on")
        object.__setattr__(self, "recorded_at", _utc(self.recorded_at, "recorded_at"))
        object.__setattr__(self, "confirmed_at", _utc_or_none(self.confirmed_at, "confirmed_at"))
        object.__setattr__(self, "released_at", _utc_or_none(self.released_at, "released_at"))
        if (self.confirmed_by is None) != (self.confirmed_at is None):
            raise ValueError("A confirmation names both who confirmed and when.")
        if self.request_reference is not None:
            parse_reference(self.request_reference)

    @property
    def label(self) -> str:
        return f"legal hold #{self.hold_id} ({self.ground.article}, review on {self.review_on.isoformat()})"

    def covers(self, *, dataset_version_id: int, dataset_id: int, reference: str | None) -> bool:
        """Whether the hold's scope takes in this snapshot for request REFERENCE (confirmed or not)."""
        if self.request_reference is not None and self.request_reference != reference:
            return False
        if self.scope == HoldScope.SNAPSHOT:
            return self.target_id == dataset_version_id
        return self.target_id == dataset_id

    def protects(self, now) -> bool:
        """Whether the hold keeps data from erasure at NOW: confirmed, and not released."""
        now = _utc(now, "now")
        confirmed = self.confirmed_at is not None and self.confirmed_at <= now
        released = self.released_at is not None and self.released_at <= now
        return confirmed and not released

    def review_overdue(self, now) -> bool:
        return _utc(now, "now").date() > self.review_on


def _review_bounds(moment: datetime) -> tuple[date, date]:
    return moment.date() + timedelta(days=1), months_after(moment, HOLD_REVIEW_MAX_MONTHS).date()


def check_hold(hold: LegalHold, *, now) -> None:
    """Raise ErasureRefused unless HOLD may be recorded NOW (unconfirmed, released never).

    The review date is a UTC day after today and at most twelve calendar months after the
    recording: keeping a person's data against their request is re-decided at least yearly,
    whatever the retention period behind it (an AI Act log retention of years is reviewed —
    and, if still due, recorded again — every year).
    """
    now = _utc(now, "now")
    if hold.confirmed_at is not None or hold.released_at is not None:
        raise ErasureRefused("A legal hold is recorded unconfirmed; a second officer confirms it afterwards.")
    if hold.recorded_at > now:
        raise ErasureRefused("A legal hold cannot be recorded in the future.")
    _justification(hold.justification, "A legal hold")
    earliest, latest = _review_bounds(hold.recorded_at)
    earliest = max(earliest, now.date() + timedelta(days=1))
    if not earliest <= hold.review_on <= latest:
        raise ErasureRefused(
            f"The review date of a legal hold is after today and at most {HOLD_REVIEW_MAX_MONTHS} months ahead "
            f"(between {earliest.isoformat()} and {latest.isoformat()})."
        )


def check_hold_confirmation(hold: LegalHold, *, confirmed_by, now, single_officer: bool = False) -> None:
    """Raise DutyRefused or ErasureRefused unless CONFIRMED_BY may confirm HOLD NOW.

    A second officer, not the one who recorded it, confirms: until then the hold protects
    nothing. SINGLE_OFFICER (the same setting as for plan approval) lets the recorder confirm,
    as a separate, recorded step — otherwise a one-person organisation could never keep the
    data the law obliges it to keep.
    """
    _check_id(confirmed_by, "confirmed_by")
    now = _utc(now, "now")
    if hold.released_at is not None:
        raise ErasureRefused(f"Legal hold #{hold.hold_id} was released; record a new one.")
    if hold.confirmed_at is not None:
        raise ErasureRefused(f"Legal hold #{hold.hold_id} is already confirmed.")
    if now < hold.recorded_at:
        raise ErasureRefused("A legal hold is confirmed after it was recorded.")
    if not single_officer and confirmed_by == hold.recorded_by:
        raise DutyRefused(
            f"The officer who recorded legal hold #{hold.hold_id} may not confirm it: a second officer must."
        )
    if hold.review_on <= now.date():
        raise ErasureRefused(
            f"The review date of legal hold #{hold.hold_id} ({hold.review_on.isoformat()}) has come: "
            "record the hold again with a new review date."
        )


def check_hold_release(hold: LegalHold, *, reason, now) -> None:
    """Raise ErasureRefused unless HOLD may be released NOW with REASON.

    One officer may release: releasing destroys nothing by itself — what the hold kept is
    erased only through a new plan, which a second officer approves.
    """
    now = _utc(now, "now")
    if hold.released_at is not None:
        raise ErasureRefused(f"Legal hold #{hold.hold_id} is already released.")
    if now < hold.recorded_at:
        raise ErasureRefused("A legal hold is released after it was recorded.")
    _justification(reason, "Releasing a legal hold")


def covering_holds(holds, *, dataset_version_id: int, dataset_id: int, reference, now) -> tuple[LegalHold, ...]:
    """Return the holds that protect this snapshot for request REFERENCE at NOW, by id."""
    return tuple(
        sorted(
            (
                h
                for h in holds
                if h.covers(dataset_version_id=dataset_version_id, dataset_id=dataset_id, reference=reference)
                and h.protects(now)
            ),
            key=lambda h: h.hold_id,
        )
    )


# --- discovery facts and the plan ---------------------------------------------------------------


class KeyState(StrEnum):
    LIVE = "live"
    DESTROYED = "destroyed"


@dataclass(frozen=True)
class StoredSnapshot:
    """A snapshot stored by Custos that holds the person, as the subject index and registry say."""

    dataset_version_id: int
    dataset_id: int
    row_count: int
    subject_rows: int
    key_state: KeyState
    key_destroyed_at: datetime | None = None
    gate_runs_in_use: tuple[int, ...] = ()  # queued or running gate runs that read it

    def __post_init__(self):
        _check_id(self.dataset_version_id, "dataset_version_id")
        _check_id(self.dataset_id, "dataset_id")
        _check_count(self.subject_rows, "subject_rows", 1)
        _check_count(self.row_count, "row_count", self.subject_rows)
        object.__setattr__(self, "key_state", KeyState(self.key_state))
        object.__setattr__(self, "key_destroyed_at", _utc_or_none(self.key_destroyed_at, "key_destroyed_at"))
        if self.key_destroyed_at is not None and self.key_state != KeyState.DESTROYED:
            raise ValueError("A live key has no destruction time.")
        object.__setattr__(self, "gate_runs_in_use", _id_tuple(self.gate_runs_in_use, "gate_runs_in_use"))


class ExternalStorage(StrEnum):
    EXTERNAL = "external"  # referenced by URI and hash
    OPENLINEAGE = "openlineage"  # reported by an OpenLineage run event


@dataclass(frozen=True)
class ExternalDataset:
    """A dataset version Custos only references: it cannot look inside or erase it."""

    dataset_version_id: int
    storage: ExternalStorage

    def __post_init__(self):
        _check_id(self.dataset_version_id, "dataset_version_id")
        object.__setattr__(self, "storage", ExternalStorage(self.storage))


@dataclass(frozen=True)
class DownstreamRelease:
    release_id: int
    environment: str

    def __post_init__(self):
        _check_id(self.release_id, "release_id")
        if not isinstance(self.environment, str) or not self.environment:
            raise ValueError("A release names its environment.")


@dataclass(frozen=True)
class DownstreamModelVersion:
    """A model version trained on data that held the person, with its training runs and releases."""

    model_version_id: int
    training_run_ids: tuple[int, ...]
    dataset_version_ids: tuple[int, ...]  # the affected inputs it was trained on
    releases: tuple[DownstreamRelease, ...] = ()

    def __post_init__(self):
        _check_id(self.model_version_id, "model_version_id")
        object.__setattr__(self, "training_run_ids", _id_tuple(self.training_run_ids, "training_run_ids"))
        object.__setattr__(self, "dataset_version_ids", _id_tuple(self.dataset_version_ids, "dataset_version_ids"))
        releases = tuple(sorted(self.releases, key=lambda r: r.release_id))
        _id_tuple((r.release_id for r in releases), "releases")
        object.__setattr__(self, "releases", releases)


@dataclass(frozen=True)
class StoredGateRun:
    """A finished gate run whose stored per-row figures include the person's rows."""

    gate_run_id: int
    dataset_version_id: int
    dataset_id: int
    subject_rows: int

    def __post_init__(self):
        _check_id(self.gate_run_id, "gate_run_id")
        _check_id(self.dataset_version_id, "dataset_version_id")
        _check_id(self.dataset_id, "dataset_id")
        _check_count(self.subject_rows, "subject_rows", 1)


@dataclass(frozen=True)
class Discovery:
    """Everything the service found for one person, as facts (no ids of the person)."""

    snapshots: tuple[StoredSnapshot, ...] = ()
    external: tuple[ExternalDataset, ...] = ()
    model_versions: tuple[DownstreamModelVersion, ...] = ()
    gate_runs: tuple[StoredGateRun, ...] = ()

    def __post_init__(self):
        for name, key in (
            ("snapshots", "dataset_version_id"),
            ("external", "dataset_version_id"),
            ("model_versions", "model_version_id"),
            ("gate_runs", "gate_run_id"),
        ):
            items = tuple(sorted(getattr(self, name), key=lambda item: getattr(item, key)))
            _id_tuple((getattr(item, key) for item in items), name)
            object.__setattr__(self, name, items)
        if {s.dataset_version_id for s in self.snapshots} & {e.dataset_version_id for e in self.external}:
            raise ValueError("A dataset version is either stored by Custos or external, not both.")


class SnapshotAction(StrEnum):
    REDACT = "redact"
    SKIP_ALREADY_DESTROYED = "skip_already_destroyed"
    KEEP_UNDER_HOLD = "keep_under_hold"
    WAIT_FOR_GATE_RUN = "wait_for_gate_run"


class GateResultAction(StrEnum):
    SCRUB = "scrub"
    KEEP_UNDER_HOLD = "keep_under_hold"


@dataclass(frozen=True)
class PlannedSnapshot:
    dataset_version_id: int
    dataset_id: int
    action: SnapshotAction
    rows_to_remove: int
    successor_rows: int | None  # expected rows of the redacted successor (redact or wait)
    hold_ids: tuple[int, ...] = ()
    gate_run_ids: tuple[int, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class RecipientTask:
    """Art. 19: a copy Custos cannot erase; its owner must erase the person and confirm."""

    dataset_version_id: int
    storage: ExternalStorage
    message: str


@dataclass(frozen=True)
class ReviewToOpen:
    model_version_id: int
    training_run_ids: tuple[int, ...]
    dataset_version_ids: tuple[int, ...]
    release_ids: tuple[int, ...]
    message: str


@dataclass(frozen=True)
class PlannedGateResult:
    gate_run_id: int
    dataset_version_id: int
    action: GateResultAction
    rows: int
    hold_ids: tuple[int, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    """What erasing one request's person takes, as data: the officer reads it, a second approves it."""

    reference: str
    snapshots: tuple[PlannedSnapshot, ...]
    recipient_tasks: tuple[RecipientTask, ...]
    reviews: tuple[ReviewToOpen, ...]
    gate_results: tuple[PlannedGateResult, ...]
    outcome: State  # COMPLETED_LIVE or PARTIALLY_COMPLETED
    warnings: tuple[str, ...] = field(default=())

    @property
    def completion_action(self) -> Action:
        return Action.COMPLETE_PARTIALLY if self.outcome == State.PARTIALLY_COMPLETED else Action.COMPLETE_LIVE

    @property
    def rows_to_remove(self) -> int:
        return sum(s.rows_to_remove for s in self.snapshots if s.action in _ERASING)

    def summary(self) -> str:
        """One safe line for the officer and the ledger: counts only."""
        count = {a: sum(1 for s in self.snapshots if s.action == a) for a in SnapshotAction}
        scrub = sum(1 for g in self.gate_results if g.action == GateResultAction.SCRUB)
        parts = [
            f"{_plural(count[SnapshotAction.REDACT], 'snapshot')} to redact",
            f"{count[SnapshotAction.WAIT_FOR_GATE_RUN]} waiting for gate runs",
            f"{count[SnapshotAction.KEEP_UNDER_HOLD]} kept under legal hold",
            f"{count[SnapshotAction.SKIP_ALREADY_DESTROYED]} already destroyed",
            f"{_plural(self.rows_to_remove, 'row')} to remove",
            f"{_plural(len(self.recipient_tasks), 'recipient task')}",
            f"{_plural(len(self.reviews), 'model review')}",
            f"{_plural(scrub, 'gate result')} to scrub",
        ]
        return f"Erasure request {_ref(self.reference)}: " + ", ".join(parts) + f"; outcome {self.outcome}."

    def as_json(self) -> dict:
        """The plan as JSON-ready data (enums as their values), for storing and hashing."""
        return _jsonable(asdict(self))


_ERASING = frozenset({SnapshotAction.REDACT, SnapshotAction.WAIT_FOR_GATE_RUN})


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return _iso(value)
    return value


def snapshot_action(snapshot: StoredSnapshot, *, holds=(), reference, now) -> PlannedSnapshot:
    """Return what to do with one stored snapshot that holds the person, and why.

    In this order: a destroyed key means the snapshot is unreadable already (skip); a confirmed,
    unreleased hold keeps it; a queued or running gate run that reads it makes erasure wait
    (destroying its key mid-run would break the run, and the figures it stores must be
    scrubbed); otherwise it is redacted.
    """
    s = snapshot
    base = dict(dataset_version_id=s.dataset_version_id, dataset_id=s.dataset_id)
    name = f"Snapshot {s.dataset_version_id} (dataset {s.dataset_id})"
    if s.key_state == KeyState.DESTROYED:
        when = f" on {_iso(s.key_destroyed_at)}" if s.key_destroyed_at else ""
        return PlannedSnapshot(
            **base, action=SnapshotAction.SKIP_ALREADY_DESTROYED, rows_to_remove=0, successor_rows=None,
            reason=f"{name}: its data key was destroyed{when}; it is unreadable already.",
        )
    kept = covering_holds(holds, dataset_version_id=s.dataset_version_id, dataset_id=s.dataset_id,
                          reference=reference, now=now)
    if kept:
        return PlannedSnapshot(
            **base, action=SnapshotAction.KEEP_UNDER_HOLD, rows_to_remove=0, successor_rows=None,
            hold_ids=tuple(h.hold_id for h in kept),
            reason=f"{name}: kept under " + "; ".join(h.label for h in kept) + ".",
        )
    remaining = s.row_count - s.subject_rows
    redact = (
        f"write a redacted successor without the person's {_plural(s.subject_rows, 'row')} "
        f"({remaining:,} of {s.row_count:,} rows remain), verify it, then destroy the old data key"
    )
    if s.gate_runs_in_use:
        runs = _plural(len(s.gate_runs_in_use), "gate run")
        return PlannedSnapshot(
            **base, action=SnapshotAction.WAIT_FOR_GATE_RUN, rows_to_remove=s.subject_rows, successor_rows=remaining,
            gate_run_ids=s.gate_runs_in_use,
            reason=f"{name}: wait until {runs} {_ids(s.gate_runs_in_use)} that read it finish and scrub their "
            f"figures; then {redact}.",
        )
    return PlannedSnapshot(
        **base, action=SnapshotAction.REDACT, rows_to_remove=s.subject_rows, successor_rows=remaining,
        reason=f"{name}: {redact}.",
    )


def gate_result_action(run: StoredGateRun, *, holds=(), reference, now) -> PlannedGateResult:
    """Return whether a stored gate run's per-row figures are scrubbed of the person or kept.

    Figures computed from a held snapshot are kept with it (the hold keeps the evidence whole:
    the run can still be re-run and compared); all others lose the person's rows.
    """
    kept = covering_holds(holds, dataset_version_id=run.dataset_version_id, dataset_id=run.dataset_id,
                          reference=reference, now=now)
    if kept:
        return PlannedGateResult(
            gate_run_id=run.gate_run_id, dataset_version_id=run.dataset_version_id,
            action=GateResultAction.KEEP_UNDER_HOLD, rows=run.subject_rows, hold_ids=tuple(h.hold_id for h in kept),
            reason=f"Gate run {run.gate_run_id}: its per-row figures on snapshot {run.dataset_version_id} are kept "
            "under " + "; ".join(h.label for h in kept) + ".",
        )
    return PlannedGateResult(
        gate_run_id=run.gate_run_id, dataset_version_id=run.dataset_version_id,
        action=GateResultAction.SCRUB, rows=run.subject_rows,
        reason=f"Gate run {run.gate_run_id}: remove the person's {_plural(run.subject_rows, 'row')} from its "
        f"per-row figures on snapshot {run.dataset_version_id}.",
    )


def plan(*, reference, discovery: Discovery, holds=(), now) -> Plan:
    """Return the erasure plan of request REFERENCE from what discovery found, at NOW.

    Pure and deterministic: the same facts give the same plan, whatever their order. The
    outcome is ``partially_completed`` when a confirmed hold keeps any snapshot or gate result,
    else ``completed_live``. Datasets Custos only references become recipient tasks; every
    model version trained on affected data gets one erasure review; the plan's warnings say
    what an officer should look at (a hold that covers data but is not confirmed, a hold whose
    review date has passed, nothing found).
    """
    _ref(reference)
    now = _utc(now, "now")
    holds = tuple(sorted(holds, key=lambda h: h.hold_id))
    _id_tuple((h.hold_id for h in holds), "holds")
    snapshots = tuple(snapshot_action(s, holds=holds, reference=reference, now=now) for s in discovery.snapshots)
    gate_results = tuple(gate_result_action(r, holds=holds, reference=reference, now=now) for r in discovery.gate_runs)
    tasks = tuple(
        RecipientTask(
            dataset_version_id=e.dataset_version_id,
            storage=e.storage,
            message=f"Dataset version {e.dataset_version_id} is "
            + ("an external reference" if e.storage == ExternalStorage.EXTERNAL else "reported by OpenLineage")
            + " that Custos cannot look into: its owner must erase the person's rows, or state that it holds none, "
            "and confirm (GDPR Art. 19).",
        )
        for e in discovery.external
    )
    reviews = tuple(_review_to_open(m) for m in discovery.model_versions)
    kept = any(s.action == SnapshotAction.KEEP_UNDER_HOLD for s in snapshots) or any(
        g.action == GateResultAction.KEEP_UNDER_HOLD for g in gate_results
    )
    return Plan(
        reference=reference,
        snapshots=snapshots,
        recipient_tasks=tasks,
        reviews=reviews,
        gate_results=gate_results,
        outcome=State.PARTIALLY_COMPLETED if kept else State.COMPLETED_LIVE,
        warnings=_plan_warnings(discovery, holds, reference, now),
    )


def _review_to_open(m: DownstreamModelVersion) -> ReviewToOpen:
    envs = sorted({r.environment for r in m.releases})
    releases = "; ".join(
        f"{_plural(sum(1 for r in m.releases if r.environment == env), env + ' release')} "
        f"({_ids(r.release_id for r in m.releases if r.environment == env)})"
        for env in envs
    ) or "no releases"
    return ReviewToOpen(
        model_version_id=m.model_version_id,
        training_run_ids=m.training_run_ids,
        dataset_version_ids=m.dataset_version_ids,
        release_ids=tuple(r.release_id for r in m.releases),
        message=f"Model version {m.model_version_id} was trained on {_plural(len(m.dataset_version_ids), 'snapshot')} "
        f"{_ids(m.dataset_version_ids)} holding the person (training runs {_ids(m.training_run_ids)}); {releases}. "
        "Decide: retrain, retain (with a justification such as an anonymity assessment) or retire. "
        "No release of it can be approved until then.",
    )


def _plan_warnings(discovery: Discovery, holds, reference, now) -> tuple[str, ...]:
    warnings = []
    places = [(s.dataset_version_id, s.dataset_id) for s in discovery.snapshots if s.key_state == KeyState.LIVE]
    places += [(r.dataset_version_id, r.dataset_id) for r in discovery.gate_runs]
    for h in holds:
        covered = sorted({v for v, d in places if h.covers(dataset_version_id=v, dataset_id=d, reference=reference)})
        if not covered:
            continue
        released = h.released_at is not None and h.released_at <= now
        if not released and not h.protects(now):
            warnings.append(
                f"Legal hold #{h.hold_id} covers snapshot(s) {_ids(covered)} but is not confirmed: it protects "
                "nothing until a second officer confirms it."
            )
        elif h.protects(now) and h.review_overdue(now):
            warnings.append(
                f"The review date of legal hold #{h.hold_id} ({h.review_on.isoformat()}) has passed: it still "
                "protects, but an officer must review it."
            )
    if not discovery.snapshots and not discovery.external and not discovery.gate_runs:
        warnings.append("Nothing Custos holds or references contains the person.")
    return tuple(warnings)


def execution_action(
    approved: PlannedSnapshot, current: StoredSnapshot, *, holds=(), reference, now
) -> PlannedSnapshot:
    """Return what the worker does now with a snapshot of the approved plan, from fresh facts.

    The worker asks before each step, because facts move after approval. What it may do is at
    most what was approved: a snapshot waiting for a gate run is redacted once the run is done;
    a new hold keeps a snapshot that was to be redacted (the outcome becomes partial); a key
    destroyed meanwhile means skip. A snapshot the plan kept stays kept even if its hold was
    released since — erasing it needs a new plan and a second officer's approval.
    """
    if (approved.dataset_version_id, approved.dataset_id) != (current.dataset_version_id, current.dataset_id):
        raise ValueError("The fresh facts are of another snapshot than the planned one.")
    fresh = snapshot_action(current, holds=holds, reference=reference, now=now)
    if approved.action == SnapshotAction.SKIP_ALREADY_DESTROYED:
        if fresh.action != SnapshotAction.SKIP_ALREADY_DESTROYED:
            raise ProgressInconsistent(
                f"Snapshot {current.dataset_version_id}: its data key was recorded destroyed and is live again."
            )
        return fresh
    if approved.action == SnapshotAction.KEEP_UNDER_HOLD and fresh.action in _ERASING:
        return PlannedSnapshot(
            dataset_version_id=approved.dataset_version_id, dataset_id=approved.dataset_id,
            action=SnapshotAction.KEEP_UNDER_HOLD, rows_to_remove=0, successor_rows=None, hold_ids=approved.hold_ids,
            reason=f"Snapshot {current.dataset_version_id}: the plan kept it under a hold that no longer protects "
            "it; plan again to erase it (a second officer approves).",
        )
    return fresh


# --- execution steps of one snapshot (crash safety) --------------------------------------------


class Step(StrEnum):
    WRITE_SUCCESSOR = "write_successor"
    VERIFY_SUCCESSOR = "verify_successor"
    DISCARD_SUCCESSOR = "discard_successor"
    COMMIT_SUCCESSOR = "commit_successor"
    DESTROY_PREDECESSOR_KEY = "destroy_predecessor_key"
    DONE = "done"


# The order in which a snapshot is erased; DISCARD_SUCCESSOR only undoes a failed or orphaned write.
STEPS = (Step.WRITE_SUCCESSOR, Step.VERIFY_SUCCESSOR, Step.COMMIT_SUCCESSOR, Step.DESTROY_PREDECESSOR_KEY)


class Verification(StrEnum):
    PENDING = "pending"  # not checked yet (or the check crashed before it was recorded)
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class SnapshotProgress:
    """What is recorded for one snapshot of a request, each fact committed by its own step.

    ``successor_written``: the redacted successor's file is complete and its pending version row
    and new data key are saved (a crash before that leaves only an unnamed file, which the
    storage sweep removes). ``verification``: the recorded result of checking the successor.
    ``successor_committed``: the successor is the registered version the index points at.
    ``predecessor_key_destroyed``: the old data key is gone.
    """

    successor_written: bool = False
    verification: Verification = Verification.PENDING
    successor_committed: bool = False
    predecessor_key_destroyed: bool = False

    def __post_init__(self):
        object.__setattr__(self, "verification", Verification(self.verification))


def _inconsistency(p: SnapshotProgress) -> str | None:
    if p.verification != Verification.PENDING and not p.successor_written:
        return "a verification is recorded for a successor that was never written"
    if p.successor_committed and not p.successor_written:
        return "a successor is recorded committed but never written"
    if p.successor_committed and p.verification != Verification.PASSED:
        return "a successor is recorded committed without a passed verification"
    return None


def next_step(progress: SnapshotProgress) -> Step:
    """Return the next step for a snapshot given what is recorded, so a re-run after any crash finishes.

    write → verify → commit → destroy the predecessor's key; a failed verification discards the
    successor and writes it again. Each step is idempotent given the record: a step that
    crashed before its record is simply taken again. The predecessor's key is destroyed only
    when a committed, verified successor is recorded. A key recorded destroyed without a
    committed successor was destroyed outside these steps: the snapshot is unreadable already,
    so an uncommitted successor is discarded and the snapshot is done. Records no step can have
    produced raise ProgressInconsistent.
    """
    p = progress
    problem = _inconsistency(p)
    if problem:
        raise ProgressInconsistent(f"Cannot continue: {problem}.")
    if p.predecessor_key_destroyed:
        if p.successor_written and not p.successor_committed:
            return Step.DISCARD_SUCCESSOR
        return Step.DONE
    if p.successor_committed:
        return Step.DESTROY_PREDECESSOR_KEY
    if not p.successor_written:
        return Step.WRITE_SUCCESSOR
    if p.verification == Verification.PENDING:
        return Step.VERIFY_SUCCESSOR
    if p.verification == Verification.FAILED:
        return Step.DISCARD_SUCCESSOR
    return Step.COMMIT_SUCCESSOR


def check_destroy(progress: SnapshotProgress) -> None:
    """Raise ProgressInconsistent unless the predecessor's key may be destroyed now.

    The worker calls this inside the transaction that destroys the key, on the rows it has
    locked: the one guard between a snapshot and its irreversible loss.
    """
    p = progress
    problem = _inconsistency(p)
    if problem:
        raise ProgressInconsistent(f"Cannot destroy the key: {problem}.")
    if p.predecessor_key_destroyed:
        raise ProgressInconsistent("The predecessor's key is already destroyed.")
    if not (p.successor_written and p.verification == Verification.PASSED and p.successor_committed):
        raise ProgressInconsistent("The predecessor's key is destroyed only after a verified successor is committed.")


@dataclass(frozen=True)
class SuccessorFacts:
    """What reading the redacted successor back found."""

    decrypts: bool
    row_count: int | None = None
    subject_rows: int | None = None  # rows whose keyed subject hash is the person's
    schema_matches: bool = False


@dataclass(frozen=True)
class SuccessorCheck:
    verification: Verification
    problems: tuple[str, ...] = ()


def check_successor(*, predecessor_rows: int, removed_rows: int, facts: SuccessorFacts) -> SuccessorCheck:
    """Return whether a redacted successor passes: it decrypts under its new key, has the
    predecessor's schema, holds exactly ``predecessor_rows - removed_rows`` rows, and none of the person's."""
    _check_count(removed_rows, "removed_rows", 1)
    _check_count(predecessor_rows, "predecessor_rows", removed_rows)
    if not facts.decrypts:
        return SuccessorCheck(Verification.FAILED, ("the successor does not decrypt under its data key",))
    problems = []
    expected = predecessor_rows - removed_rows
    if facts.row_count != expected:
        got = "an uncounted number of" if facts.row_count is None else f"{facts.row_count:,}"
        problems.append(f"the successor holds {got} rows, expected {expected:,}")
    if facts.subject_rows != 0:
        got = "an uncounted number" if facts.subject_rows is None else f"{facts.subject_rows:,}"
        problems.append(f"the successor still holds {got} of the person's rows")
    if not facts.schema_matches:
        problems.append("the successor's schema differs from its predecessor's")
    return SuccessorCheck(Verification.FAILED if problems else Verification.PASSED, tuple(problems))


# --- completion ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionProgress:
    """What the worker has finished for a request, by object id."""

    snapshots_done: frozenset = frozenset()  # redacted (Step.DONE) or found destroyed
    snapshots_kept: frozenset = frozenset()  # kept under a hold (planned, or one recorded since)
    gate_results_scrubbed: frozenset = frozenset()
    gate_results_kept: frozenset = frozenset()
    reviews_opened: frozenset = frozenset()  # model version ids
    recipients_confirmed: frozenset = frozenset()  # dataset version ids whose owner confirmed


@dataclass(frozen=True)
class Completion:
    action: Action | None  # COMPLETE_LIVE / COMPLETE_PARTIALLY, or None while work remains
    outstanding: tuple[str, ...]


def completion(plan_: Plan, progress: ExecutionProgress) -> Completion:
    """Return how an executing request ends, or what is still outstanding.

    Done when every snapshot is redacted, found destroyed or kept; every gate result scrubbed
    or kept; every review opened (its decision may come later); and every recipient's owner
    has confirmed. Kept data makes the end ``partially_completed``, whatever the plan expected.
    """
    snap_ids = {s.dataset_version_id for s in plan_.snapshots}
    gate_ids = {g.gate_run_id for g in plan_.gate_results}
    open_snaps = snap_ids - progress.snapshots_done - progress.snapshots_kept
    open_gates = gate_ids - progress.gate_results_scrubbed - progress.gate_results_kept
    open_reviews = {r.model_version_id for r in plan_.reviews} - progress.reviews_opened
    open_tasks = {t.dataset_version_id for t in plan_.recipient_tasks} - progress.recipients_confirmed
    outstanding = []
    if open_snaps:
        outstanding.append(f"{_plural(len(open_snaps), 'snapshot')} not finished ({_ids(open_snaps)})")
    if open_gates:
        outstanding.append(f"{_plural(len(open_gates), 'gate result')} not scrubbed ({_ids(open_gates)})")
    if open_reviews:
        outstanding.append(f"{_plural(len(open_reviews), 'model review')} not opened ({_ids(open_reviews)})")
    if open_tasks:
        outstanding.append(f"{_plural(len(open_tasks), 'recipient')} not confirmed ({_ids(open_tasks)})")
    if outstanding:
        return Completion(None, tuple(outstanding))
    kept = (progress.snapshots_kept & snap_ids) or (progress.gate_results_kept & gate_ids)
    return Completion(Action.COMPLETE_PARTIALLY if kept else Action.COMPLETE_LIVE, ())


# --- backups ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MasterKeyRotation:
    """One master key rotation: when the live data keys were rewrapped, and when the old master key was destroyed."""

    rotated_at: datetime
    old_key_destroyed_at: datetime | None = None

    def __post_init__(self):
        object.__setattr__(self, "rotated_at", _utc(self.rotated_at, "rotated_at"))
        destroyed = _utc_or_none(self.old_key_destroyed_at, "old_key_destroyed_at")
        object.__setattr__(self, "old_key_destroyed_at", destroyed)
        if self.old_key_destroyed_at is not None and self.old_key_destroyed_at < self.rotated_at:
            raise ValueError("An old master key is destroyed after the rotation that retired it.")


@dataclass(frozen=True)
class BackupStatus:
    unreadable: bool
    unreadable_since: datetime | None
    next_rotation_at: datetime | None  # the scheduled rotation that would make them unreadable
    lands_within_deadline: bool | None  # None: no schedule given, or a rotation alone would not do
    message: str

    @property
    def action(self) -> Action | None:
        return Action.COMPLETE_BACKUPS if self.unreadable else None


def backup_status(
    *,
    last_key_destroyed_at,
    rotations=(),
    due_at,
    now,
    earliest_key_created_at=None,
    rotation_interval: timedelta | None = None,
    rotation_anchor=None,
) -> BackupStatus:
    """Return whether the backups of a request's destroyed snapshots are unreadable, and when they will be.

    A backup of the database keeps the destroyed data keys, wrapped by the master key that was
    current when the backup was taken. So the backups are unreadable once every master key that
    was current while one of those data keys existed is destroyed: the one current at the last
    destruction (retired by the first rotation after it) and every earlier one back to
    EARLIEST_KEY_CREATED_AT (all earlier ones if not given). LAST_KEY_DESTROYED_AT is the latest
    destruction of any key of a snapshot that held the person — the request's own and any found
    destroyed already — or None when no such key exists (nothing to retire).

    With ROTATION_INTERVAL (the batch rotation setting) and ROTATION_ANCHOR (a time a scheduled
    rotation ran, by default the latest recorded one), it also says when the next scheduled
    rotation after the last destruction runs and whether that is within DUE_AT. A scheduled
    rotation destroys the old master key as its last step (``master_key_rotate`` replaces the
    key file), so its time is the time the backups become unreadable.
    """
    now, due_at = _utc(now, "now"), _utc(due_at, "due_at")
    rotations = sorted(rotations, key=lambda r: r.rotated_at)
    if last_key_destroyed_at is None:
        return BackupStatus(True, None, None, None, "No data key holding the person was destroyed: no backup copy "
                            "needs a master key retired.")
    last = _utc(last_key_destroyed_at, "last_key_destroyed_at")
    if last > now:
        raise ValueError("The last key destruction is in the future.")
    earliest = _utc_or_none(earliest_key_created_at, "earliest_key_created_at")
    if earliest is not None and earliest > last:
        raise ValueError("A key is created before it is destroyed.")
    after = next((r for r in rotations if r.rotated_at > last), None)
    # A master key retired before the earliest data key was created never wrapped it.
    earlier = [r for r in rotations if r.rotated_at <= last and (earliest is None or r.rotated_at >= earliest)]
    needed = earlier + ([after] if after else [])

    def destroyed(r):
        return r.old_key_destroyed_at is not None and r.old_key_destroyed_at <= now

    pending = [r for r in needed if not destroyed(r)]
    if after is not None and not pending:
        since = max(r.old_key_destroyed_at for r in needed)
        return BackupStatus(
            True, since, None, None,
            f"Backups are unreadable since {_iso(since)}: the master key current at the last key destruction "
            f"({_iso(last)}) and every earlier one that wrapped the keys are destroyed.",
        )
    message = f"Backups may still be readable: the last key destruction was at {_iso(last)}"
    if pending:
        # Another rotation would not help: it retires the current master key, not these.
        message += (
            f"; {_plural(len(pending), 'retired master key')} that wrapped the keys "
            f"(rotation(s) at {', '.join(_iso(r.rotated_at) for r in pending)}) "
            + ("is" if len(pending) == 1 else "are") + " not destroyed: destroy "
            + ("it" if len(pending) == 1 else "them") + "."
        )
    else:
        message += "; no master key rotation has followed it."
    next_at = lands = None
    if rotation_interval is not None:
        if not isinstance(rotation_interval, timedelta) or rotation_interval <= timedelta(0):
            raise ValueError("The rotation interval is a positive timedelta.")
        anchor = _utc_or_none(rotation_anchor, "rotation_anchor") or (rotations[-1].rotated_at if rotations else None)
        if after is None and not pending and anchor is not None:
            start = max(last, now)  # the first scheduled run after both the destruction and now
            steps = 0 if anchor > start else (start - anchor) // rotation_interval + 1
            next_at = anchor + steps * rotation_interval
            lands = next_at <= due_at
            message += (
                f" The next scheduled rotation at {_iso(next_at)} is "
                + (f"within the deadline ({_iso(due_at)})." if lands
                   else f"after the deadline ({_iso(due_at)}): rotate the master key before then.")
            )
    return BackupStatus(False, None, next_at, lands, message)


# --- erasure review of a model version ----------------------------------------------------------


class ReviewState(StrEnum):
    OPEN = "open"
    DECIDED = "decided"


class ReviewDecision(StrEnum):
    RETRAIN = "retrain"  # train a new version without the person; this one is not released again
    RETAIN = "retain"  # keep it: e.g. an anonymity assessment shows the model holds no personal data
    RETIRE = "retire"  # stop using it: the service revokes its releases


@dataclass(frozen=True)
class ReviewEffect:
    revoke_releases: bool
    new_releases_allowed: bool
    retrain: bool


# EDPB Opinion 28/2024 and the ICO: a model trained on personal data is not anonymous by default;
# the controller decides per model whether it may keep it (retain, with the assessment), must
# train it again without the data (retrain), or must stop using it (retire). Retraining leaves
# the live releases to be superseded by the retrained version through the release process;
# a version to be taken out of use now is retired.
REVIEW_EFFECTS = {
    ReviewDecision.RETRAIN: ReviewEffect(revoke_releases=False, new_releases_allowed=False, retrain=True),
    ReviewDecision.RETAIN: ReviewEffect(revoke_releases=False, new_releases_allowed=True, retrain=False),
    ReviewDecision.RETIRE: ReviewEffect(revoke_releases=True, new_releases_allowed=False, retrain=False),
}


@dataclass(frozen=True)
class ErasureReview:
    reference: str  # the erasure request that opened it
    model_version_id: int
    state: ReviewState = ReviewState.OPEN
    decision: ReviewDecision | None = None

    def __post_init__(self):
        parse_reference(self.reference)
        _check_id(self.model_version_id, "model_version_id")
        object.__setattr__(self, "state", ReviewState(self.state))
        if self.decision is not None:
            object.__setattr__(self, "decision", ReviewDecision(self.decision))
        if (self.state == ReviewState.DECIDED) != (self.decision is not None):
            raise ValueError("A decided review has a decision; an open one has none.")


def check_review_decision(review: ErasureReview, *, decision, justification) -> ReviewEffect:
    """Return what deciding REVIEW with DECISION entails, or raise ErasureRefused.

    Every decision carries a written justification; for ``retain`` it is the reason the model
    may stay (an anonymity assessment and where it is kept).
    """
    decision = ReviewDecision(decision)
    if review.state != ReviewState.OPEN:
        raise ErasureRefused(
            f"The erasure review of model version {review.model_version_id} ({_ref(review.reference)}) "
            "is decided already."
        )
    _justification(justification, f"A decision to {decision}")
    return REVIEW_EFFECTS[decision]


def blocks_release(review: ErasureReview) -> bool:
    """Whether REVIEW stops new releases of its model version from being approved."""
    return review.state == ReviewState.OPEN or not REVIEW_EFFECTS[review.decision].new_releases_allowed


def release_block_reason(model_version_id: int, reviews) -> str | None:
    """Return why no release of MODEL_VERSION_ID may be approved, or None if the reviews allow it.

    The release rules ask this before an approval: an open review blocks, and so does a
    decision to retrain or retire.
    """
    blocking = sorted(
        (r for r in reviews if r.model_version_id == model_version_id and blocks_release(r)),
        key=lambda r: r.reference,
    )
    if not blocking:
        return None
    parts = [
        f"{_ref(r.reference)} ({'open' if r.state == ReviewState.OPEN else 'decided: ' + r.decision.value})"
        for r in blocking
    ]
    return (
        f"Model version {model_version_id} is under erasure review for " + ", ".join(parts)
        + ": no release of it can be approved."
    )


# --- staying erased -----------------------------------------------------------------------------


class ReuploadPolicy(StrEnum):
    REFUSE = "refuse"  # the upload is refused; the uploader removes the rows and uploads again
    DROP_AND_RECORD = "drop_and_record"  # the rows are dropped on the way in and the drop is ledgered


@dataclass(frozen=True)
class ErasedMatch:
    """Rows of an upload whose keyed subject hash matches the kept hash of one erasure request."""

    reference: str
    rows: int
    held_by: tuple[int, ...] = ()  # confirmed holds that keep this person in the target dataset

    def __post_init__(self):
        parse_reference(self.reference)
        _check_count(self.rows, "rows", 1)
        object.__setattr__(self, "held_by", _id_tuple(self.held_by, "held_by"))


@dataclass(frozen=True)
class ReuploadDecision:
    accept: bool
    rows_to_drop: int
    references: tuple[str, ...]  # the requests whose people were found (for the ledger)
    message: str


def reupload_decision(*, policy, matches) -> ReuploadDecision:
    """Return what to do with an upload that holds people erased before (by request, never by person).

    Rows a confirmed hold keeps in the target dataset (say, an AI Act log that must keep
    recording) are accepted. The rest are refused under REFUSE — the message names the requests
    and counts the rows — or dropped under DROP_AND_RECORD.
    """
    policy = ReuploadPolicy(policy)
    matches = sorted(matches, key=lambda m: m.reference)
    if len({m.reference for m in matches}) != len(matches):
        raise ValueError("One match per erasure request.")
    held = [m for m in matches if m.held_by]
    erased = [m for m in matches if not m.held_by]
    refs = tuple(m.reference for m in matches)
    notes = []
    if held:
        holds = sorted({h for m in held for h in m.held_by})
        notes.append(
            f"{_plural(sum(m.rows for m in held), 'row')} of erasure request(s) {', '.join(m.reference for m in held)} "
            f"kept under legal hold(s) #{', #'.join(map(str, holds))}."
        )
    if not erased:
        return ReuploadDecision(True, 0, refs, " ".join(notes))
    rows = sum(m.rows for m in erased)
    names = ", ".join(_ref(m.reference) for m in erased)
    if policy == ReuploadPolicy.REFUSE:
        return ReuploadDecision(
            False, 0, refs,
            " ".join([f"The upload holds {_plural(rows, 'row')} of people erased under erasure request(s) {names}: "
                      "remove them and upload again.", *notes]),
        )
    return ReuploadDecision(
        True, rows, refs,
        " ".join([f"{_plural(rows, 'row')} of people erased under erasure request(s) {names} were dropped and "
                  "recorded.", *notes]),
    )


def keeps_out(state) -> bool:
    """Whether a request in STATE keeps its person out of new uploads."""
    return State(state) in KEEPS_OUT_STATES


def hash_purge_due(*, state, closed_at, now, retention: timedelta) -> bool:
    """Whether the keyed hash kept for a request may be purged now.

    The hash is personal data itself, kept only to keep the person out and to recognise a
    repeated request (Art. 12(5)). It goes RETENTION (a setting) after the request reached a
    final state — completed in backups, or refused. A partially completed request keeps it:
    what its holds keep is still owed.
    """
    if not isinstance(retention, timedelta) or retention <= timedelta(0):
        raise ValueError("The hash retention is a positive timedelta.")
    if State(state) not in FINAL_STATES:
        return False
    return _utc(now, "now") >= _utc(closed_at, "closed_at") + retention
