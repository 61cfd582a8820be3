"""The demo leaves a production model with eight signed weekly windows, drift from week six,
an alert and an open finding."""

from django.core.management import call_command

from audit.models import LedgerEntry
from governance.monitoring.models import Finding, MonitoringPlan


def test_the_demo_monitors_its_production_release(db, capsys):
    call_command("demo")
    out = capsys.readouterr().out
    plan = MonitoringPlan.objects.get(release__environment="production", release__state="approved")
    assert plan.status == MonitoringPlan.Status.ACTIVE and "monitoring: plan" in out
    windows = list(plan.windows.order_by("start"))
    assert len(windows) == 8 and all(w.state == "closed" and w.ledger_seq for w in windows)
    psi = [next(f for f in w.evaluation["statistics"] if f["statistic"] == "psi" and f["column"] == "credit_amount")
           for w in windows]
    assert [p["verdict"] == "alert" for p in psi] == [False] * 5 + [True] * 3
    assert Finding.objects.filter(plan=plan, state="open", column="credit_amount").exists()
    assert LedgerEntry.objects.filter(kind="monitoring.window_closed").count() == 8
    assert windows[0].labelled == 500 and windows[7].labelled == 0
    call_command("demo", "--full")  # every step again, not the quick path of a noted complete run
    assert "has windows" in capsys.readouterr().out
    assert plan.windows.count() == 8
