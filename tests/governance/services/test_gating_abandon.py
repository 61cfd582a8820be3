"""Gate runs that no worker finished (a crashed worker, a lost task) end in error, and their releases move on."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import LedgerEntry
from governance.rules import roles
from governance.models import GateRun
from governance.rules.releases import State
from governance.services.gates import gate_policy_assign, gate_run_start, gate_run_submit
from governance.services.gating import gate_runs_abandon_stuck
from governance.services.releases import release_request


@pytest.fixture
def submit(unit, gate_policy, german_credit_version, make_gate_model_version):
    """Submit a run without executing it (its task would be sent on commit): it stays queued."""
    gate_policy_assign(policy_name=gate_policy.name, risk_tier="high")

    def make(version):
        return gate_run_submit(
            model_version=make_gate_model_version(unit, "fair", version=version), dataset_version=german_credit_version,
            label_column="risk", positive_label="1", policy=gate_policy, seed=3,
        )

    return make


def aged(run, *, minutes, field):
    GateRun.objects.filter(pk=run.pk).update(**{field: timezone.now() - timedelta(minutes=minutes)})  # time passes
    run.refresh_from_db()
    return run


def test_a_run_running_past_the_timeout_ends_in_error_and_its_release_fails_its_gates(submit, make_user, unit, settings):
    settings.CUSTOS_GATE_RUN_TIMEOUT = 3600
    stuck = gate_run_start(run=submit("1.0"))
    release = release_request(model_version=stuck.model_version, environment="production",
                              actor=make_user(roles.DATA_SCIENTIST, [unit]))
    assert release.state == State.GATING  # waits on the running run
    fresh = gate_run_start(run=submit("2.0"))
    aged(fresh, minutes=59, field="started_at")
    aged(stuck, minutes=61, field="started_at")

    assert gate_runs_abandon_stuck() == [stuck]
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == GateRun.Status.ERROR and stuck.reason.startswith("Abandoned: running for more than 60 minutes")
    assert fresh.status == GateRun.Status.RUNNING  # within its time: left alone
    finished = LedgerEntry.objects.get(subject=stuck.ledger_subject, kind="gates.run_finished")
    assert finished.payload["verdict"] == "error"
    release.refresh_from_db()
    assert release.state == State.GATE_FAILED and release.gate_ledger_seq == finished.seq  # never a pass
    assert gate_runs_abandon_stuck() == []  # already ended


def test_a_queued_run_no_worker_took_is_abandoned_by_the_command_and_the_beat_task(submit, settings, capsys):
    queued = aged(submit("1.0"), minutes=30, field="created_at")
    call_command("gates", "abandon-stuck", "--older-than", "45")
    assert "0 stuck gate run(s) abandoned." in capsys.readouterr().out
    call_command("gates", "abandon-stuck", "--older-than", "20")
    out = capsys.readouterr().out
    assert f"Gate run {queued.pk} " in out and "1 stuck gate run(s) abandoned." in out
    queued.refresh_from_db()
    assert queued.status == GateRun.Status.ERROR and "queued for more than 20 minutes" in queued.reason
    with pytest.raises(CommandError, match="at least 1 minute"):
        call_command("gates", "abandon-stuck", "--older-than", "0")

    from governance.tasks import gate_runs_abandon_stuck_task

    schedule = settings.CELERY_BEAT_SCHEDULE["gate-runs-abandon-stuck"]
    assert schedule["task"] == "governance.gate_runs_abandon_stuck"
    settings.CUSTOS_GATE_RUN_TIMEOUT = 60
    another = aged(submit("2.0"), minutes=2, field="created_at")
    assert gate_runs_abandon_stuck_task.delay().get() == [another.pk]
