import pytest
from django.core.management import CommandError, call_command

from governance.models import GatePolicyAssignment, GateRun
from governance.services.gates import gate_run_submit


@pytest.fixture
def run(unit, gate_policy, german_credit_version, make_gate_model_version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = gate_run_submit(model_version=make_gate_model_version(unit), dataset_version=german_credit_version,
                              label_column="risk", positive_label="1", policy=gate_policy, seed=5)
    run.refresh_from_db()
    return run


def test_reverify_reproduces_a_run(run, capsys):
    call_command("gates", "reverify", str(run.pk))
    assert f"Gate run {run.pk} reproduces" in capsys.readouterr().out


def test_reverify_exits_non_zero_and_says_what_differs(run, capsys):
    result = run.result
    result["explainability"]["raw_values"][0][0] += 0.5
    result["fairness"]["features"][0]["metrics"]["demographic_parity_difference"]["value"] = 0.0
    GateRun.objects.filter(pk=run.pk).update(result=result)  # tampering with the stored result
    with pytest.raises(CommandError, match="does not reproduce"):
        call_command("gates", "reverify", str(run.pk))
    err = capsys.readouterr().err
    assert "raw_values" in err and "demographic_parity_difference" in err
    with pytest.raises(CommandError, match="No gate run"):
        call_command("gates", "reverify", "999999")


def test_install_defaults_is_idempotent(db, capsys):
    call_command("gates", "install-defaults")
    call_command("gates", "install-defaults")
    assert GatePolicyAssignment.objects.get(risk_tier="high").policy_name == "high-risk-default"
    assert capsys.readouterr().out.count("published") == 1


def test_reverify_after_erasure_says_the_snapshot_was_redacted(run, make_user, django_capture_on_commit_callbacks):
    from governance.rules import roles
    from governance.services import erasure

    first, second = make_user(roles.DATA_PROTECTION_OFFICER), make_user(roles.DATA_PROTECTION_OFFICER)
    request = erasure.erasure_request_record(subject_id="applicant-0003", ground="b", actor=first)
    erasure.erasure_identity_verify(request=request, evidence_reference="ticket 3", actor=first)
    erasure.erasure_plan(request=request, actor=first)
    erasure.erasure_plan_approve(request=request, actor=second)
    with django_capture_on_commit_callbacks(execute=True):
        erasure.erasure_execute(request=request, actor=second)
    request.refresh_from_db()
    assert request.state == "completed_live", request.error
    with pytest.raises(CommandError, match=f"redacted under erasure request {request.reference}") as stopped:
        call_command("gates", "reverify", str(run.pk))
    assert stopped.value.returncode == 3
    assert run.reverifications.latest("pk").status == "redacted"
