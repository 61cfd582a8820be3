"""manage.py monitoring: ingest a file, apply labels, evaluate, show (text and JSON)."""

import csv
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.monitoring.models import MonitoringWindow

from .conftest import scored_rows


def run(*args):
    out = StringIO()
    call_command("monitoring", *args, stdout=out)
    return out.getvalue()


def test_ingest_labels_evaluate_show(production_plan, monitoring_people, tmp_path):
    from django.utils import timezone

    from governance.monitoring.services import plan_version_publish

    origin = (timezone.now() - timedelta(days=14)).replace(hour=0, minute=0, second=0, microsecond=0)
    plan_version_publish(plan=production_plan, changes={"origin": origin.isoformat()}, actor=monitoring_people["admin"])
    rows, truth = scored_rows(production_plan.model_version, 300, start=origin, step=timedelta(minutes=30))
    path = tmp_path / "batch.parquet"
    rows.to_parquet(path)
    out = json.loads(run("ingest", str(production_plan.pk), str(path), "--json",
                         "--actor", monitoring_people["pipeline"].username))
    assert out["created"] and out["rows_accepted"] == 300
    assert "already" in run("ingest", str(production_plan.pk), str(path))
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prediction_id", "label"])
        w.writerows(list(truth.items())[:50])
    assert "50 applied" in run("labels", str(production_plan.pk), str(labels))
    done = json.loads(run("evaluate", "--json"))
    assert [d["window_id"] for d in done] == list(MonitoringWindow.objects.filter(
        plan=production_plan, end__lte=timezone.now()).order_by("start").values_list("pk", flat=True))
    shown = json.loads(run("show", str(production_plan.pk), "--json"))
    assert shown["windows"][0]["state"] == "closed" and shown["windows"][0]["ledger_seq"]
    assert f"plan {production_plan.pk}" in run("show")
    with pytest.raises(CommandError):
        run("show", str(production_plan.pk), "--actor", monitoring_people["admin"].username + "-nobody")
    with pytest.raises(CommandError, match="column"):
        bad = tmp_path / "bad.csv"
        rows.drop(columns=["duration"]).to_csv(bad, index=False)
        run("ingest", str(production_plan.pk), str(bad))
