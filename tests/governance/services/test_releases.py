"""Release services: every transition ledgered, segregation of duties, attestations that verify."""

import hashlib

import pytest

from config.errors import DomainError
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import TestCase

from audit.attestation import AttestationError, verify_artifact
from audit.note import open_checkpoint
from audit.verifier import load_verifier_keys
from audit.keys import signing_key
from audit.models import LedgerEntry
from governance.rules import roles
from governance.models import Approval, ApprovalPolicy, ReleaseRequest
from governance.rules.releases import ApprovalRule, DecisionRefused, State, TransitionRefused
from tests.gate_verdicts import finished_gate_run, record_gate_verdict
from governance.services.releases import (
    ReleaseConflict,
    approval_policy_current,
    approval_policy_publish,
    release_decide,
    release_gate_result_record,
    release_request,
    release_revoke,
)

CO, MRV, DS, PIPE, AUD = (
    roles.COMPLIANCE_OFFICER,
    roles.MODEL_RISK_VALIDATOR,
    roles.DATA_SCIENTIST,
    roles.PIPELINE,
    roles.AUDITOR,
)
WHY = "Reviewed the gate evidence and the lineage."


@pytest.fixture
def people(make_user, unit):
    return {
        "requester": make_user(DS, [unit]),
        "validator": make_user(MRV, [unit]),
        "officer": make_user(CO, [unit]),
        "officer2": make_user(CO, [unit]),
    }


def decide(**kwargs):
    """release_decide, then run what it left for after the commit (the attestation), as a commit would."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        release = release_decide(**kwargs)
    release.refresh_from_db()
    return release


def kinds(release):
    return list(LedgerEntry.objects.filter(subject=release.ledger_subject).values_list("kind", flat=True))


def gates(release, verdict="passed"):
    return record_gate_verdict(release, verdict)


def awaiting(model_version, requester, environment="production", verdict="passed"):
    return gates(release_request(model_version=model_version, environment=environment, actor=requester), verdict)


def approve_fully(release, people):
    decide(release=release, actor=people["validator"], role=MRV, decision="approve", justification=WHY)
    return decide(release=release, actor=people["officer"], role=CO, decision="approve", justification=WHY)


# --- requesting -----------------------------------------------------------------------------


def test_a_request_is_ledgered_and_starts_gating(credit_model_version, people):
    release = release_request(model_version=credit_model_version, environment="production", actor=people["requester"])
    assert release.state == State.GATING
    assert kinds(release) == ["release.requested", "release.gating_started"]
    entry = LedgerEntry.objects.get(subject=release.ledger_subject, kind="release.requested")
    assert entry.payload["artifact_sha256"] == credit_model_version.artifact_sha256
    assert entry.payload["approval_policy"]["digest"] == release.approval_policy.digest
    assert entry.actor == people["requester"].username


def test_the_default_policy_is_published_once_and_ledgered(credit_model_version, people):
    release_request(model_version=credit_model_version, environment="production", actor=people["requester"])
    release_request(model_version=credit_model_version, environment="staging", actor=people["requester"])
    assert ApprovalPolicy.objects.filter(risk_tier="high", environment="production").count() == 1
    policy = approval_policy_current(risk_tier="high", environment="production")
    assert policy.rule["required_roles"] == [MRV, CO]
    assert LedgerEntry.objects.filter(kind="release.approval_policy_published", subject=policy.ledger_subject).count() == 1


def test_a_new_policy_version_applies_to_new_requests(credit_model_version, people, make_user):
    admin = make_user(superuser=True)
    approval_policy_current(risk_tier="high", environment="staging")
    v2 = approval_policy_publish(risk_tier="high", environment="staging", rule=ApprovalRule(min_approvers=2), actor=admin)
    assert v2.version == 2
    release = release_request(model_version=credit_model_version, environment="staging", actor=people["requester"])
    assert release.approval_policy == v2
    with pytest.raises(PermissionDenied):
        approval_policy_publish(
            risk_tier="high", environment="staging", rule=ApprovalRule(min_approvers=1), actor=people["validator"]
        )


def test_a_second_open_request_for_the_same_version_is_a_conflict(credit_model_version, people):
    release_request(model_version=credit_model_version, environment="production", actor=people["requester"])
    with pytest.raises(ReleaseConflict):
        release_request(model_version=credit_model_version, environment="production", actor=people["requester"])
    assert ReleaseRequest.objects.count() == 1


def test_who_may_request(credit_model_version, make_user, unit, other_unit):
    release_request(model_version=credit_model_version, environment="staging", actor=make_user(PIPE, [unit]))
    for outsider in [make_user(DS, [other_unit]), make_user(PIPE, [other_unit]), make_user(CO, [unit]), make_user(AUD)]:
        with pytest.raises(PermissionDenied):
            release_request(model_version=credit_model_version, environment="production", actor=outsider)


def test_a_prohibited_model_is_never_released(make_user, unit, credit_model_artifact):
    from governance.services.registry import model_create, model_version_register

    model = model_create(
        business_unit=unit, name="social-scoring", intended_purpose="Rank citizens.", risk_tier="prohibited"
    )
    mv = model_version_register(model=model, version="1", artifact=credit_model_artifact[0], artifact_format="skops")
    with pytest.raises(ValidationError, match="prohibited"):
        release_request(model_version=mv, environment="staging", actor=make_user(DS, [unit]))
    assert not ReleaseRequest.objects.exists()


# --- gates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "verdict,state",
    [("passed", State.AWAITING_APPROVAL), ("inconclusive", State.AWAITING_APPROVAL),
     ("failed", State.GATE_FAILED), ("error", State.GATE_FAILED)],
)
def test_gate_verdicts_move_the_request(credit_model_version, people, verdict, state):
    release = release_request(model_version=credit_model_version, environment="production", actor=people["requester"])
    release = gates(release, verdict)
    assert release.state == state
    entry = LedgerEntry.objects.get(subject=release.ledger_subject, kind="release.gates_recorded")
    assert entry.payload["verdict"] == verdict and entry.payload["state"] == state


def test_people_cannot_record_gate_results_and_gates_report_once(credit_model_version, people):
    release = release_request(model_version=credit_model_version, environment="production", actor=people["requester"])
    with pytest.raises(PermissionDenied):
        release_gate_result_record(release=release, run=finished_gate_run(release.model_version), actor=people["officer"])
    gates(release)
    with pytest.raises(TransitionRefused):
        gates(release, "failed")


# --- decisions ----------------------------------------------------------------------------------


def test_high_risk_production_needs_validator_and_officer(credit_model_version, people, credit_model_artifact, tmp_path):
    release = awaiting(credit_model_version, people["requester"])
    release = decide(release=release, actor=people["validator"], role=MRV, decision="approve", justification=WHY)
    assert release.state == State.AWAITING_APPROVAL and release.attestation is None
    release = decide(release=release, actor=people["officer"], role=CO, decision="approve", justification=WHY)
    assert release.state == State.APPROVED
    assert kinds(release) == [
        "release.requested",
        "release.gating_started",
        "release.gates_recorded",
        "release.approval_given",
        "release.approval_given",
        "release.approved",
        "release.attestation_issued",
    ]
    # The attestation verifies against the artifact's bytes and names every decision's entry.
    artifact = tmp_path / "model.skops"
    artifact.write_bytes(credit_model_artifact[0])
    stmt = verify_artifact(release.attestation, load_verifier_keys([signing_key().verifier_key]), artifact)
    pred = stmt["predicate"]
    assert pred["release_id"] == release.pk and pred["environment"] == "production"
    assert [a["role"] for a in pred["approvals"]] == [MRV, CO]
    assert [a["ledger_seq"] for a in pred["approvals"]] == list(
        Approval.objects.filter(release=release).values_list("ledger_seq", flat=True)
    )
    approved = LedgerEntry.objects.get(subject=release.ledger_subject, kind="release.approved")
    assert pred["ledger"]["approved_seq"] == approved.seq
    assert pred["ledger"]["approved_entry_hash"] == bytes(approved.entry_hash).hex()
    # The checkpoint in the attestation is signed by the ledger and covers every entry cited.
    checkpoint = open_checkpoint(pred["ledger"]["checkpoint"]["note"], load_verifier_keys([signing_key().verifier_key]))
    assert checkpoint.size == pred["ledger"]["checkpoint"]["size"] > approved.seq
    assert checkpoint.root.hex() == pred["ledger"]["checkpoint"]["root_hash"]
    assert pred["policies"]["approval"]["digest"] == release.approval_policy.digest
    assert pred["gates"][0]["verdict"] == "passed"
    issued = LedgerEntry.objects.get(subject=release.ledger_subject, kind="release.attestation_issued")
    assert issued.payload["payload_sha256"] == hashlib.sha256(release.attestation["payload"].encode()).hexdigest()
    other = tmp_path / "other.skops"
    other.write_bytes(b"another model")
    with pytest.raises(AttestationError):
        verify_artifact(release.attestation, load_verifier_keys([signing_key().verifier_key]), other)


def test_two_officers_do_not_make_a_validation(credit_model_version, people):
    release = awaiting(credit_model_version, people["requester"])
    decide(release=release, actor=people["officer"], role=CO, decision="approve", justification=WHY)
    release = decide(release=release, actor=people["officer2"], role=CO, decision="approve", justification=WHY)
    assert release.state == State.AWAITING_APPROVAL


def test_the_requester_never_decides(credit_model_version, make_user, unit, people):
    both = make_user(DS, [unit])
    both.groups.add(*type(both.groups.first()).objects.filter(name=MRV))
    release = awaiting(credit_model_version, both)
    with pytest.raises(DecisionRefused, match="requester"):
        decide(release=release, actor=both, role=MRV, decision="approve", justification=WHY)
    assert not Approval.objects.exists()


def test_one_person_approves_once(credit_model_version, people):
    release = awaiting(credit_model_version, people["requester"])
    decide(release=release, actor=people["validator"], role=MRV, decision="approve", justification=WHY)
    with pytest.raises(DecisionRefused, match="distinct"):
        decide(release=release, actor=people["validator"], role=MRV, decision="approve", justification=WHY)


@pytest.mark.parametrize("justification", ["", "ok", "         "])
def test_every_decision_needs_a_justification(credit_model_version, people, justification):
    release = awaiting(credit_model_version, people["requester"])
    with pytest.raises(DomainError, match="justification"):
        decide(release=release, actor=people["validator"], role=MRV, decision="approve", justification=justification)


def test_an_approver_needs_the_unit_and_the_role(credit_model_version, people, make_user, other_unit, unit):
    release = awaiting(credit_model_version, people["requester"])
    with pytest.raises(PermissionDenied):
        decide(release=release, actor=make_user(MRV, [other_unit]), role=MRV, decision="approve", justification=WHY)
    with pytest.raises(PermissionDenied):
        decide(release=release, actor=make_user(AUD), role=AUD, decision="approve", justification=WHY)
    with pytest.raises(DecisionRefused, match="do not hold"):
        decide(release=release, actor=people["officer"], role=MRV, decision="approve", justification=WHY)


def test_one_rejection_ends_it(credit_model_version, people):
    release = awaiting(credit_model_version, people["requester"])
    decide(release=release, actor=people["validator"], role=MRV, decision="approve", justification=WHY)
    release = decide(release=release, actor=people["officer"], role=CO, decision="reject", justification=WHY)
    assert release.state == State.REJECTED and release.attestation is None
    assert kinds(release)[-2:] == ["release.rejection_given", "release.rejected"]
    with pytest.raises(TransitionRefused):
        decide(release=release, actor=people["officer2"], role=CO, decision="approve", justification=WHY)
    # A rejected request no longer blocks a new one.
    assert release_request(
        model_version=credit_model_version, environment="production", actor=people["requester"]
    ).state == State.GATING


def test_deciding_before_the_gates_is_a_conflict(credit_model_version, people):
    release = release_request(model_version=credit_model_version, environment="production", actor=people["requester"])
    with pytest.raises(TransitionRefused):
        decide(release=release, actor=people["validator"], role=MRV, decision="approve", justification=WHY)


def test_an_inconclusive_gate_needs_a_recorded_override_first(credit_model_version, people):
    release = awaiting(credit_model_version, people["requester"], verdict="inconclusive")
    with pytest.raises(DecisionRefused, match="overridden first"):  # the documented order: override, then approve
        decide(release=release, actor=people["validator"], role=MRV, decision="approve", justification=WHY)
    with pytest.raises(DecisionRefused, match="override"):
        decide(release=release, actor=people["officer2"], role=CO, decision="override", justification=WHY)
    release = decide(release=release, actor=people["validator"], role=MRV, decision="override", justification=WHY)
    assert release.state == State.AWAITING_APPROVAL
    release = approve_fully(release, people)
    assert release.state == State.APPROVED
    assert "release.gate_overridden" in kinds(release)
    decisions = {a["decision"] for a in _predicate(release)["approvals"]}
    assert decisions == {"approve", "override"}


def _predicate(release):
    import base64
    import json

    return json.loads(base64.b64decode(release.attestation["payload"]))["predicate"]


# --- after approval ---------------------------------------------------------------------------


def test_revocation_needs_a_justification_and_the_permission(credit_model_version, people):
    release = approve_fully(awaiting(credit_model_version, people["requester"]), people)
    with pytest.raises(PermissionDenied):
        release_revoke(release=release, justification=WHY, actor=people["validator"])
    with pytest.raises(ValidationError):
        release_revoke(release=release, justification="", actor=people["officer"])
    release = release_revoke(release=release, justification="Drift found in production.", actor=people["officer"])
    assert release.state == State.REVOKED and release.ended_at is not None
    assert kinds(release)[-1] == "release.revoked"
    with pytest.raises(TransitionRefused):
        release_revoke(release=release, justification="again and again", actor=people["officer"])


def test_revoking_a_pending_request_is_a_conflict(credit_model_version, people):
    release = awaiting(credit_model_version, people["requester"])
    with pytest.raises(TransitionRefused):
        release_revoke(release=release, justification=WHY, actor=people["officer"])


def test_a_newer_approved_version_supersedes_the_old(make_credit_model_version, unit, people):
    v1 = make_credit_model_version(unit, version="1.0")
    v2 = make_credit_model_version(unit, version="2.0")
    first = approve_fully(awaiting(v1, people["requester"]), people)
    second = approve_fully(awaiting(v2, people["requester"]), people)
    first.refresh_from_db()
    assert first.state == State.SUPERSEDED and first.superseded_by == second
    assert second.state == State.APPROVED
    assert kinds(first)[-1] == "release.superseded"
    with pytest.raises(ReleaseConflict):
        release_request(model_version=v2, environment="production", actor=people["requester"])
