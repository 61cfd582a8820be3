"""Releases and gate runs: a request uses the current gate run or starts one; a finished run moves it on."""

import base64
import json

import pytest
from django.test import TestCase

from audit.models import LedgerEntry
from governance.rules import roles
from governance.models import GateRun
from governance.rules.releases import State
from governance.services.gates import gate_policy_assign, gate_run_submit
from governance.services.releases import release_decide, release_request

WHY = "Reviewed the gate evidence and the lineage."


def committed(fn, **kwargs):
    """Call FN, then run what it left for after the commit (eager Celery tasks), as a commit would."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        result = fn(**kwargs)
    result.refresh_from_db()
    return result


@pytest.fixture
def assigned(gate_policy):
    gate_policy_assign(policy_name=gate_policy.name, risk_tier="high")
    return gate_policy


@pytest.fixture
def requester(make_user, unit):
    return make_user(roles.DATA_SCIENTIST, [unit])


def run_for(mv, dataset_version, policy):
    return committed(
        gate_run_submit, model_version=mv, dataset_version=dataset_version, label_column="risk",
        positive_label="1", policy=policy, seed=7,
    )


def test_a_passed_current_run_takes_the_request_to_approval_at_once(
    assigned, unit, requester, german_credit_version, make_gate_model_version
):
    mv = make_gate_model_version(unit, "fair")
    run = run_for(mv, german_credit_version, assigned)
    assert run.status == GateRun.Status.PASSED, run.reason
    release = release_request(model_version=mv, environment="production", actor=requester)
    assert release.state == State.AWAITING_APPROVAL
    finished = LedgerEntry.objects.get(subject=run.ledger_subject, kind="gates.run_finished")
    assert (release.gate_verdict, release.gate_run, release.gate_ledger_seq) == ("passed", run, finished.seq)
    assert release.gate_details["policy"]["digest"] == assigned.digest
    assert any(c["name"].startswith("fairness.") and c["verdict"] == "passed" for c in release.gate_details["checks"])
    assert GateRun.objects.count() == 1  # no second run for the same version and policy


def test_a_request_starts_a_run_with_the_models_evaluation_set_and_fails_on_its_verdict(
    assigned, unit, requester, german_credit_version, make_gate_model_version
):
    run_for(make_gate_model_version(unit, "fair", version="1.0"), german_credit_version, assigned)
    skewed = make_gate_model_version(unit, "skewed", version="2.0")
    release = committed(release_request, model_version=skewed, environment="production", actor=requester)
    new_run = GateRun.objects.get(model_version=skewed)
    assert new_run.dataset_version == german_credit_version and new_run.policy == assigned
    assert new_run.status == GateRun.Status.FAILED
    assert release.state == State.GATE_FAILED and release.gate_run == new_run
    kinds = list(LedgerEntry.objects.filter(subject=release.ledger_subject).values_list("kind", flat=True))
    assert kinds == ["release.requested", "release.gating_started", "release.gates_recorded"]


def test_without_a_policy_or_an_evaluation_set_the_request_waits_in_gating(
    gate_policy, unit, requester, german_credit_version, make_gate_model_version
):
    mv = make_gate_model_version(unit, "fair")
    release = committed(release_request, model_version=mv, environment="production", actor=requester)
    assert release.state == State.GATING  # no policy assigned to the model or its tier
    gate_policy_assign(policy_name=gate_policy.name, risk_tier="high")
    # A run submitted later through the gates API reports to the waiting request when it ends.
    run = run_for(mv, german_credit_version, gate_policy)
    release.refresh_from_db()
    assert release.state == State.AWAITING_APPROVAL and release.gate_run == run


def test_the_attestation_names_the_gate_run_and_its_policy(
    assigned, unit, requester, make_user, german_credit_version, make_gate_model_version
):
    mv = make_gate_model_version(unit, "fair")
    run = run_for(mv, german_credit_version, assigned)
    release = release_request(model_version=mv, environment="production", actor=requester)
    release_decide(release=release, actor=make_user(roles.MODEL_RISK_VALIDATOR, [unit]),
                   role=roles.MODEL_RISK_VALIDATOR, decision="approve", justification=WHY)
    release = committed(release_decide, release=release, actor=make_user(roles.COMPLIANCE_OFFICER, [unit]),
                        role=roles.COMPLIANCE_OFFICER, decision="approve", justification=WHY)
    predicate = json.loads(base64.b64decode(release.attestation["payload"]))["predicate"]
    assert predicate["gates"] == [{"run": run.ledger_subject, "verdict": "passed", "ledger_seq": release.gate_ledger_seq}]
    assert predicate["policies"]["gate"]["digest"] == assigned.digest


def test_the_review_page_shows_the_gate_runs_charts_and_links_it(
    assigned, unit, requester, make_user, german_credit_version, make_gate_model_version, client
):
    mv = make_gate_model_version(unit, "fair")
    run = run_for(mv, german_credit_version, assigned)
    release = release_request(model_version=mv, environment="production", actor=requester)
    client.force_login(make_user(roles.MODEL_RISK_VALIDATOR, [unit]))
    page = client.get(f"/admin/governance/releaserequest/{release.pk}/review/").content.decode()
    charts = page[page.index('id="gate-charts"'):page.index("Decisions so far")]
    assert charts.count("<svg") >= 2  # SHAP importance and the by-group fairness bars
    assert f"/admin/governance/gaterun/{run.pk}/change/" in page
    assert assigned.digest[:16] in page
