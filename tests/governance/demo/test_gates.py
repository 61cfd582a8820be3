from django.core.management import call_command

from governance.charts.gates import fairness_charts, importance_chart
from governance.models import GateRun


def test_demo_has_one_failing_and_one_passing_gate_run_with_charts(db, capsys):
    call_command("demo")
    runs = {r.model_version.version: r for r in GateRun.objects.filter(model_version__model__name="credit-scoring-gbm")}
    assert runs["1.0"].status == "failed"
    assert runs["1.1"].status == "passed", runs["1.1"].reason
    for run in runs.values():
        assert importance_chart(run.result).startswith("<svg")
        assert len(fairness_charts(run.result)) == 4
    call_command("demo", "--full")  # every step again: each is idempotent
    assert GateRun.objects.filter(model_version__model__name="credit-scoring-gbm").count() == 2
    assert "gate runs of credit-scoring-gbm exist" in capsys.readouterr().out
