"""Monitoring services on a real production release: the plan made on approval, ingestion that
keeps no row, labels, window evaluation signed into the ledger, finding → incident → revocation."""

import io
from datetime import datetime, timedelta, timezone

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import LedgerEntry
from governance.monitoring.aggregates import ReferenceProfile
from governance.monitoring.models import (
    Finding, Incident, IngestedBatch, JoinRecord, MonitoringPlan, MonitoringWindow,
)
from governance.monitoring.services import (
    MonitoringConflict, batch_ingest, finding_dismiss, incident_open, incident_report, labels_record,
    plan_version_publish, revocation_execute, revocation_request, windows_close,
)
from governance.monitoring.statistics import SOURCES
from governance.rules.releases import State

from .conftest import PLAN_ORIGIN, approve_to_production, scored_rows

WEEK = timedelta(days=7)


def csv_bytes(frame) -> io.BytesIO:
    return io.BytesIO(frame.to_csv(index=False).encode())


def test_approval_to_production_makes_the_plan_with_its_reference(credit_model_version, monitoring_people):
    approve_to_production(credit_model_version, monitoring_people)
    plan = MonitoringPlan.objects.get(model_version=credit_model_version)
    assert plan.status == MonitoringPlan.Status.ACTIVE, plan.reference_problem
    assert plan.reference_origin == "gate evaluation snapshot"
    profile = ReferenceProfile.from_json(plan.reference)
    assert profile.digest == plan.reference_digest
    assert profile.rows == 100  # the gate's evaluation snapshot (tests/gate_verdicts.py)
    assert set(profile.spec.numeric) >= {"credit_amount", "duration", "age"}
    assert [g.column for g in profile.spec.groups] == ["sex", "age"]
    version = plan.versions.get()
    assert version.policy["risk_tier"] == "high" and version.policy["limits"]["min_rows"] == 200
    assert set(version.policy["sources"]) <= set(SOURCES) and version.policy["caveats"]
    entry = LedgerEntry.objects.get(kind="monitoring.plan_created", subject=plan.ledger_subject)
    assert entry.payload["reference_digest"] == plan.reference_digest
    assert entry.payload["policy_digest"] == version.digest


def test_a_staging_approval_makes_no_plan(credit_model_version, monitoring_people):
    from governance.rules import roles
    from governance.services.releases import release_decide, release_request
    from tests.gate_verdicts import record_gate_verdict

    release = record_gate_verdict(release_request(model_version=credit_model_version, environment="staging",
                                                  actor=monitoring_people["requester"]))
    for who, role in (("validator", roles.MODEL_RISK_VALIDATOR), ("officer", roles.COMPLIANCE_OFFICER)):
        try:
            release_decide(release=release, actor=monitoring_people[who], role=role, decision="approve",
                           justification="Staging looks fine to me.")
        except Exception:
            break
    assert not MonitoringPlan.objects.exists()


def test_a_new_plan_version_is_ledgered_and_checked(production_plan, monitoring_people):
    v = plan_version_publish(plan=production_plan, changes={"limits": {"psi_warn": 0.12}},
                             actor=monitoring_people["validator"])
    assert v.version == 3 and v.policy["limits"]["psi_warn"] == 0.12
    entry = LedgerEntry.objects.filter(kind="monitoring.plan_version_published").latest("seq")
    assert entry.payload["digest"] == v.digest and entry.payload["changed"] == ["limits"]
    with pytest.raises(ValidationError):
        plan_version_publish(plan=production_plan, changes={"limits": {"psi_warn": 0.5}}, actor=monitoring_people["validator"])
    with pytest.raises(ValidationError):
        plan_version_publish(plan=production_plan, changes={"reference": {}}, actor=monitoring_people["validator"])
    with pytest.raises(PermissionDenied):
        plan_version_publish(plan=production_plan, changes={"notes": "x"}, actor=monitoring_people["pipeline"])


def test_ingestion_keeps_no_row_and_is_idempotent(production_plan, monitoring_people, settings, tmp_path):
    rows, _ = scored_rows(production_plan.model_version, 600, start=PLAN_ORIGIN)
    rows["applicant_name"] = "Zelda Quartermain-Sentinel"  # a column the plan does not name
    data = rows.to_csv(index=False).encode()
    now = PLAN_ORIGIN + 2 * WEEK
    batch, created = batch_ingest(plan=production_plan, source=io.BytesIO(data), file_format="csv",
                                  actor=monitoring_people["pipeline"], now=now)
    assert created and batch.rows_read == 600 and batch.rows_accepted == 600
    assert batch.ignored_columns == ["applicant_name"] and batch.join_records == 600
    window = MonitoringWindow.objects.get(plan=production_plan)
    assert window.rows == 600 and window.batches == 1
    again, created = batch_ingest(plan=production_plan, source=io.BytesIO(data), file_format="csv",
                                  actor=monitoring_people["pipeline"], now=now)
    assert not created and again.pk == batch.pk
    window.refresh_from_db()
    assert window.rows == 600
    # No production value anywhere: not in a table (the ledger included), not in storage.
    from django.db import connection

    needles = ["Zelda", "p-0-000001", rows["timestamp"][7]]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            text = repr(cursor.fetchall())
            for needle in needles:
                assert needle not in text, (table, needle)
    from pathlib import Path

    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert b"Zelda" not in content and b"p-0-000001" not in content, path


def test_bad_batches_are_refused_clearly(production_plan, monitoring_people):
    rows, _ = scored_rows(production_plan.model_version, 50, start=PLAN_ORIGIN)
    now = PLAN_ORIGIN + WEEK
    with pytest.raises(ValidationError, match="duration"):
        batch_ingest(plan=production_plan, source=csv_bytes(rows.drop(columns=["duration"])), file_format="csv",
                     actor=monitoring_people["pipeline"], now=now)
    bad = rows.copy()
    bad.loc[3, "timestamp"] = "yesterday"
    with pytest.raises(ValidationError, match="timestamp"):
        batch_ingest(plan=production_plan, source=csv_bytes(bad), file_format="csv",
                     actor=monitoring_people["pipeline"], now=now)
    late, _ = scored_rows(production_plan.model_version, 20, start=PLAN_ORIGIN + 5 * WEEK, seed=2)
    batch, _ = batch_ingest(plan=production_plan, source=csv_bytes(late), file_format="csv",
                            actor=monitoring_people["pipeline"], now=now)
    assert batch.rows_accepted == 0 and batch.rejected["after_accepted_range"] == 20
    with pytest.raises(PermissionDenied):
        batch_ingest(plan=production_plan, source=csv_bytes(rows), file_format="csv",
                     actor=monitoring_people["requester"], now=now)
    assert not LedgerEntry.objects.filter(kind="monitoring.batch_ingested", payload__rows_accepted__gt=0).exists()


def _feed(plan, people, weeks, *, shift_from=None, n=400):
    labels = {}
    for week in range(weeks):
        rows, truth = scored_rows(plan.model_version, n, start=PLAN_ORIGIN + week * WEEK, seed=week,
                                  shift=1.8 if shift_from is not None and week >= shift_from else 1.0,
                                  step=timedelta(minutes=20))
        batch_ingest(plan=plan, source=csv_bytes(rows), file_format="csv", actor=people["pipeline"],
                     now=PLAN_ORIGIN + week * WEEK + timedelta(days=1))
        labels.update(truth)
    return labels


def test_windows_close_sign_their_statistics_and_open_findings(production_plan, monitoring_people):
    labels = _feed(production_plan, monitoring_people, 3, shift_from=2)
    closed = windows_close(now=PLAN_ORIGIN + 3 * WEEK)
    assert len(closed) == 3
    first, _, shifted = MonitoringWindow.objects.filter(plan=production_plan).order_by("start")
    for window in (first, shifted):
        entry = LedgerEntry.objects.get(seq=window.ledger_seq)
        assert entry.kind == "monitoring.window_closed"
        assert entry.payload["aggregate_digest"] == window.aggregate_digest
        assert entry.payload["evaluation_digest"] == window.evaluation_digest
        assert entry.payload["rows"] == 400 and "p-0-000001" not in repr(entry.payload)
    psi = {f["column"]: f for f in shifted.evaluation["statistics"] if f["statistic"] == "psi"}
    assert psi["credit_amount"]["verdict"] == "alert"
    assert Finding.objects.filter(window=shifted, column="credit_amount", statistic="psi").exists()
    assert not Finding.objects.filter(window=first, column="credit_amount").exists()
    # Labels arrive later: performance is judged on a re-evaluation, ledgered again.
    given = dict(list(labels.items())[:1200])
    given["never-predicted"] = 1
    counts = labels_record(plan=production_plan, labels=given, actor=monitoring_people["pipeline"])
    assert counts["applied"] == 1200 and counts["unmatched"] == 1
    again = labels_record(plan=production_plan, labels=dict(list(labels.items())[:10]), actor=monitoring_people["pipeline"])
    assert again["applied"] == 0 and again["already_labelled"] == 10
    with pytest.raises(ValidationError):
        labels_record(plan=production_plan, labels={"p-0-000003": "maybe"}, actor=monitoring_people["pipeline"])
    windows_close(now=PLAN_ORIGIN + 3 * WEEK)
    first.refresh_from_db()
    assert first.labelled == 400 and first.evaluated_labelled == 400
    accuracy = next(f for f in first.evaluation["statistics"] if f["statistic"] == "accuracy")
    assert accuracy["n"] == 400 and accuracy["value"] is not None and accuracy["interval"][0] is not None
    assert accuracy["limits"]["baseline_from"] == "reference"  # this gate run recorded no performance
    assert LedgerEntry.objects.filter(kind="monitoring.window_reevaluated").count() == 3
    # The join records go once the label delay has passed.
    windows_close(now=PLAN_ORIGIN + 3 * WEEK + timedelta(days=91))
    assert not JoinRecord.objects.filter(plan=production_plan).exists()


def test_a_finding_becomes_an_incident_and_a_revocation(production_plan, monitoring_people):
    _feed(production_plan, monitoring_people, 1, shift_from=0)
    windows_close(now=PLAN_ORIGIN + WEEK)
    finding = Finding.objects.filter(plan=production_plan, column="credit_amount").first()
    assert finding is not None
    with pytest.raises(PermissionDenied):
        finding_dismiss(finding=finding, justification="Looks like noise to me.", actor=monitoring_people["pipeline"])
    aware = datetime.now(timezone.utc) - timedelta(hours=1)
    incident = incident_open(finding=finding, category="widespread", aware_at=aware,
                             description="Applicants' amounts shifted; decisions may be systematically wrong.",
                             actor=monitoring_people["validator"])
    assert incident.deadline == aware + timedelta(days=2)
    assert Incident.objects.get().finding == finding
    with pytest.raises(MonitoringConflict):
        finding_dismiss(finding=finding, justification="Looks like noise to me.", actor=monitoring_people["validator"])
    incident_report(incident=incident, reported_at=datetime.now(timezone.utc), reference="MSA-2024-0042",
                    actor=monitoring_people["officer"])
    revocation_request(finding=finding, justification="The model no longer fits its applicants.",
                       actor=monitoring_people["validator"])
    with pytest.raises(PermissionDenied):
        revocation_execute(finding=finding, justification="The model no longer fits its applicants.",
                           actor=monitoring_people["validator"])
    revocation_execute(finding=finding, justification="The model no longer fits its applicants.",
                       actor=monitoring_people["officer"])
    production_plan.release.refresh_from_db()
    assert production_plan.release.state == State.REVOKED
    kinds = list(LedgerEntry.objects.filter(kind__startswith="monitoring.").values_list("kind", flat=True))
    for kind in ("monitoring.finding_opened", "monitoring.incident_opened", "monitoring.incident_reported",
                 "monitoring.revocation_requested", "monitoring.revocation_executed"):
        assert kind in kinds
    assert LedgerEntry.objects.filter(kind="release.revoked", subject=production_plan.release.ledger_subject).exists()


def test_an_open_window_that_is_too_small_is_inconclusive_not_ok(production_plan, monitoring_people):
    rows, _ = scored_rows(production_plan.model_version, 40, start=PLAN_ORIGIN)
    batch_ingest(plan=production_plan, source=csv_bytes(rows), file_format="csv", actor=monitoring_people["pipeline"],
                 now=PLAN_ORIGIN + timedelta(days=1))
    (window,) = windows_close(now=PLAN_ORIGIN + WEEK)
    drift = [f for f in window.evaluation["statistics"] if f["statistic"] in ("psi", "js_distance")]
    assert drift and all(f["verdict"] != "ok" for f in drift)
    assert IngestedBatch.objects.filter(plan=production_plan).count() == 1


def _destroy_gate_snapshot_key(model_version):
    from governance.models import DatasetVersion
    from governance.services.registry import snapshot_key_destroy
    from tests.gate_verdicts import finished_gate_run

    run = finished_gate_run(model_version)  # the evaluation snapshot the release's gate will cite
    snapshot_key_destroy(dataset_version=DatasetVersion.objects.get(pk=run.dataset_version_id),
                         reason="Erasure request of a data subject.")


def test_without_the_gate_snapshot_the_training_snapshot_is_the_reference(credit_model_version, monitoring_people):
    _destroy_gate_snapshot_key(credit_model_version)
    approve_to_production(credit_model_version, monitoring_people)
    plan = MonitoringPlan.objects.get(model_version=credit_model_version)
    assert plan.status == MonitoringPlan.Status.ACTIVE and plan.reference_origin == "training snapshot"
    assert plan.reference["rows"] == 1000 and "gate evaluation snapshot" in plan.reference_problem


def test_a_plan_whose_reference_cannot_be_read_says_so_and_refuses_batches(credit_model_version, monitoring_people):
    from governance.monitoring.selectors import monitoring_health
    from governance.services.registry import snapshot_key_destroy

    _destroy_gate_snapshot_key(credit_model_version)
    snapshot_key_destroy(dataset_version=credit_model_version.training_run.inputs.get(role="train").dataset_version,
                         reason="Erasure request of a data subject.")
    release = approve_to_production(credit_model_version, monitoring_people)
    assert release.state == State.APPROVED  # monitoring never undoes an approval
    plan = MonitoringPlan.objects.get(model_version=credit_model_version)
    assert plan.status == MonitoringPlan.Status.NO_REFERENCE
    assert "gate evaluation snapshot" in plan.reference_problem and "training snapshot" in plan.reference_problem
    assert monitoring_health(credit_model_version.pk, "production")["status"] == "no reference"
    rows, _ = scored_rows(credit_model_version, 10, start=PLAN_ORIGIN)
    with pytest.raises(MonitoringConflict):
        batch_ingest(plan=plan, source=csv_bytes(rows), file_format="csv", actor=monitoring_people["pipeline"])
    entry = LedgerEntry.objects.get(kind="monitoring.plan_created", subject=plan.ledger_subject)
    assert entry.payload["status"] == "no_reference" and entry.payload["reference_digest"] is None


def test_the_ledger_read_scope_covers_monitoring_entries(production_plan, monitoring_people, make_user, other_unit):
    from governance.rules import roles
    from governance.selectors.ledger import scope_entries

    _feed(production_plan, monitoring_people, 1, shift_from=0)
    windows_close(now=PLAN_ORIGIN + WEEK)
    entries = LedgerEntry.objects.filter(kind__startswith="monitoring.")
    subjects = set(entries.values_list("subject", flat=True))
    assert any(s.startswith("monitoring.monitoringwindow:") for s in subjects)
    assert any(s.startswith("monitoring.finding:") for s in subjects)
    mine = set(scope_entries(entries, monitoring_people["validator"]).values_list("subject", flat=True))
    assert mine == subjects
    outsider = make_user(roles.MODEL_RISK_VALIDATOR, [other_unit])
    assert not scope_entries(entries, outsider).exists()
