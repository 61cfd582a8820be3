"""The erasure workflow end to end on real encrypted snapshots of the German credit data (CSV and
Parquet): intake, plan, segregation, execution with a fault at every step, proof, staying erased."""

import hashlib
import json
import logging
from datetime import timedelta

import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.canonical import canonical_json
from audit.models import LedgerEntry
from config.errors import Conflict
from governance.demo import credit
from governance.models import (
    ErasureRequest,
    ErasureReview,
    ErasureSnapshot,
    GateRun,
    GateRunReverification,
    SnapshotKey,
    SubjectIndexEntry,
)
from governance.rules import erasure as rules
from governance.rules import roles
from governance.rules.kinds import GovernanceKind
from governance.selectors.snapshots import snapshot_bytes, snapshot_frame
from governance.services import erasure as service
from governance.services.gates import gate_run_reverify, gate_run_reverify_request, gate_run_submit
from governance.services.registry import dataset_version_upload
from governance.storage import SnapshotUnreadable
from governance.storage.subjects import subject_key

PERSON = "applicant-0006"  # row 5 of the German credit data
TYPED = "  APPLICANT-0006 "  # as an officer might type it: odd case and white space


@pytest.fixture
def officers(make_user):
    """Two Data Protection Officers: the first records and plans, the second approves."""
    return make_user(roles.DATA_PROTECTION_OFFICER), make_user(roles.DATA_PROTECTION_OFFICER)


@pytest.fixture
def parquet_version(make_german_credit_version, unit, tmp_path, german_credit_csv):
    path = tmp_path / "german_credit.parquet"
    pd.read_csv(german_credit_csv, dtype={credit.SUBJECT_COLUMN: str}).to_parquet(path, index=False)
    csv_version = make_german_credit_version(unit, version="csv-v1")
    return dataset_version_upload(
        dataset=csv_version.dataset, version="parquet-v1", file=path, file_format="parquet",
        subject_column=credit.SUBJECT_COLUMN, personal_columns=credit.PERSONAL_COLUMNS, actor=None,
    ), csv_version


def _approved(officers, subject_id=TYPED):
    first, second = officers
    request = service.erasure_request_record(subject_id=subject_id, ground="b", actor=first)
    request = service.erasure_identity_verify(request=request, evidence_reference="DPO ticket 4711", actor=first)
    request = service.erasure_plan(request=request, actor=first)
    return service.erasure_plan_approve(request=request, plan_sha256=request.plan_sha256, actor=second)


def _execute(request, actor, capture):
    with capture(execute=True):
        service.erasure_execute(request=request, actor=actor)
    request.refresh_from_db()
    return request


def test_intake_keeps_only_the_keyed_hash_and_refuses_a_second_open_request(officers):
    first, _ = officers
    request = service.erasure_request_record(subject_id=TYPED, ground="b", actor=first)
    assert request.reference.startswith(f"ER-{timezone.now().year}-")
    assert request.subject_key == subject_key(PERSON)
    assert request.due_at == rules.due_at(request.received_at)
    with pytest.raises(Conflict) as refused:
        service.erasure_request_record(subject_id=PERSON, ground="a", actor=first)
    assert request.reference in str(refused.value) and PERSON not in str(refused.value)
    with pytest.raises(ValidationError):
        service.erasure_request_record(subject_id="   ", ground="a", actor=first)


def test_extension_only_before_the_first_deadline(officers):
    first, _ = officers
    now = timezone.now()
    late = service.erasure_request_record(subject_id="someone", ground="a", received_at=now - timedelta(days=40),
                                          actor=first)
    with pytest.raises(rules.ErasureRefused, match="first deadline"):
        service.erasure_extend(request=late, months=1, reason="Many snapshots to rewrite this month.",
                               subject_notified_at=now, actor=first)
    early = service.erasure_request_record(subject_id="someone else", ground="a", actor=first)
    early = service.erasure_extend(request=early, months=2, reason="Many snapshots to rewrite this month.",
                                   subject_notified_at=timezone.now(), actor=first)
    assert early.due_at == rules.months_after(early.received_at, 3)


def test_the_planner_cannot_approve(officers, german_credit_version):
    first, second = officers
    request = service.erasure_request_record(subject_id=TYPED, ground="b", actor=first)
    request = service.erasure_identity_verify(request=request, evidence_reference="ticket 1", actor=second)
    request = service.erasure_plan(request=request, actor=first)
    with pytest.raises(rules.DutyRefused):
        service.erasure_plan_approve(request=request, actor=first)
    with pytest.raises(rules.DutyRefused):  # the identity verifier neither
        service.erasure_plan_approve(request=request, actor=second)
    with pytest.raises(rules.TransitionRefused):  # nothing runs before approval
        service.erasure_execute(request=request, actor=second)
    assert SnapshotKey.objects.get(dataset_version=german_credit_version).wrapped_key is not None


def test_full_run_on_csv_and_parquet_erases_the_person_and_proves_it(
    officers, parquet_version, make_credit_model_version, unit, django_capture_on_commit_callbacks, caplog,
    german_credit_csv, api_client,
):
    caplog.set_level(logging.DEBUG)
    parquet, csv = parquet_version
    model_version = make_credit_model_version(unit, dataset_version=csv)
    original_csv = snapshot_bytes(csv)
    original_frame = snapshot_frame(parquet)
    first, second = officers
    seq_before = LedgerEntry.objects.count()

    request = _approved(officers)
    plan = request.approved_plan()
    assert {s.dataset_version_id for s in plan.snapshots} == {csv.pk, parquet.pk}
    assert all(s.rows_to_remove == 1 for s in plan.snapshots)
    assert [r.model_version_id for r in plan.reviews] == [model_version.pk]

    request = _execute(request, second, django_capture_on_commit_callbacks)
    assert request.state == rules.State.COMPLETED_LIVE, request.error

    for es in ErasureSnapshot.objects.filter(request=request).select_related("predecessor", "successor"):
        assert es.done and es.verification == rules.Verification.PASSED
        with pytest.raises(SnapshotUnreadable):
            snapshot_bytes(es.predecessor)
        assert es.predecessor.sha256 in (csv.sha256, parquet.sha256)  # the original keeps its hash
        if es.predecessor.file_format == "csv":
            lines = original_csv.split(b"\n")
            del lines[6]  # header + rows 0..4 come first
            assert snapshot_bytes(es.successor) == b"\n".join(lines)
        else:
            expected = original_frame.drop(index=5).reset_index(drop=True)
            pd.testing.assert_frame_equal(snapshot_frame(es.successor), expected)
        assert es.successor.row_count == 999
    assert not SubjectIndexEntry.objects.filter(subject_key=subject_key(PERSON)).exists()
    assert SubjectIndexEntry.objects.filter(subject_key=subject_key("applicant-0007")).count() == 2
    proof = request.absence_proof
    assert proof["index_entries"] == 0 and proof["predecessors_readable"] == 0 and proof["rows_removed"] == 2

    review = ErasureReview.objects.get(request=request)
    assert review.model_version_id == model_version.pk and review.state == "open"

    # Staying erased: the same data uploaded again is refused, naming the request, not the person.
    with pytest.raises(Conflict) as refused:
        dataset_version_upload(dataset=csv.dataset, version="again", file=german_credit_csv, file_format="csv",
                               subject_column=credit.SUBJECT_COLUMN, actor=None)
    assert request.reference in str(refused.value)

    # Nothing personal anywhere: every ledger payload, log line and API answer of the run.
    api_client.force_authenticate(first)
    answers = [api_client.get("/api/v1/erasure-requests"), api_client.get(f"/api/v1/erasure-requests/{request.reference}")]
    assert all(a.status_code == 200 for a in answers)
    key = subject_key(PERSON)
    texts = [json.dumps(e.payload) + e.subject for e in LedgerEntry.objects.filter(seq__gte=seq_before)]
    texts += [r.getMessage() for r in caplog.records] + [a.content.decode() for a in answers]
    texts += [str(refused.value), request.outcome, json.dumps(request.absence_proof), json.dumps(request.plan)]
    for text in texts:
        for secret in (PERSON, TYPED.strip(), key):
            assert secret not in text.casefold() if secret != key else secret not in text


def test_an_open_review_blocks_release_approval(officers, german_credit_version, make_credit_model_version, unit,
                                                 django_capture_on_commit_callbacks, make_user):
    from governance.services.releases import release_decide, release_request
    from tests.gate_verdicts import record_gate_verdict

    model_version = make_credit_model_version(unit, dataset_version=german_credit_version)
    release = release_request(model_version=model_version, environment="staging",
                              actor=make_user(roles.DATA_SCIENTIST, [unit]))
    release = record_gate_verdict(release, "passed")
    request = _execute(_approved(officers), officers[1], django_capture_on_commit_callbacks)
    assert "under erasure review" in service.selectors.release_block_reason(model_version.pk)
    validator = make_user(roles.MODEL_RISK_VALIDATOR, [unit])
    with pytest.raises(Conflict, match=f"under erasure review for {request.reference}"):
        release_decide(release=release, actor=validator, role=roles.MODEL_RISK_VALIDATOR, decision="approve",
                       justification="Validated: performance and fairness within policy.")
    review = ErasureReview.objects.get(request=request)
    service.erasure_review_decide(review=review, decision="retain",
                                  justification="Anonymity assessment AA-12 shows no memorisation.", actor=validator)
    assert service.selectors.release_block_reason(model_version.pk) is None
    release_decide(release=release, actor=validator, role=roles.MODEL_RISK_VALIDATOR, decision="approve",
                   justification="Validated: performance and fairness within policy.")


def test_unknown_person_completes_with_nothing_found(officers, german_credit_version,
                                                     django_capture_on_commit_callbacks):
    request = _execute(_approved(officers, subject_id="nobody-here"), officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.COMPLETED_LIVE
    assert "nothing was erased" in request.outcome
    assert SnapshotKey.objects.get(dataset_version=german_credit_version).wrapped_key is not None


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", list(rules.STEPS))
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_fault_at_every_step_then_resume(step, when, officers, german_credit_version, monkeypatch,
                                           django_capture_on_commit_callbacks):
    """A crash before a step commits, or right after, stops the run in error; nothing is lost; resuming finishes."""
    original = service._STEPS[step]
    crashed = []

    def faulty(es):
        if not crashed:
            crashed.append(step)
            if when == "before":
                raise Crash()
            original(es)
            raise Crash()
        original(es)

    monkeypatch.setitem(service._STEPS, step, faulty)
    before = snapshot_bytes(german_credit_version)
    request = _execute(_approved(officers), officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.ERROR and "Crash" in request.error
    es = ErasureSnapshot.objects.get(request=request)
    key = SnapshotKey.objects.get(dataset_version=german_credit_version)
    if key.wrapped_key is None:  # destroyed only with a committed, verified successor
        assert es.successor_committed and es.verification == rules.Verification.PASSED
        assert len(snapshot_bytes(es.successor)) > 0
    else:
        assert snapshot_bytes(german_credit_version) == before  # the old state is whole

    request = _execute(request, officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.COMPLETED_LIVE, request.error
    es.refresh_from_db()
    assert es.done and es.predecessor_key_destroyed
    lines = before.split(b"\n")
    del lines[6]
    assert snapshot_bytes(es.successor) == b"\n".join(lines)


def test_a_fault_mid_write_leaves_no_file_and_no_successor(officers, german_credit_version, monkeypatch,
                                                           django_capture_on_commit_callbacks, settings):
    from pathlib import Path

    from governance.storage import redaction

    def broken(chunks, dst, *, positions):
        dst.write(next(iter(chunks)))
        raise Crash()

    monkeypatch.setattr(redaction, "redact_csv", broken)
    files_before = set(Path(settings.MEDIA_ROOT).rglob("*.enc"))
    request = _execute(_approved(officers), officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.ERROR
    assert set(Path(settings.MEDIA_ROOT).rglob("*.enc")) == files_before
    assert ErasureSnapshot.objects.get(request=request).successor is None
    monkeypatch.undo()
    request = _execute(request, officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.COMPLETED_LIVE


def test_a_successor_that_fails_verification_is_discarded_and_the_key_kept(
    officers, german_credit_version, monkeypatch, django_capture_on_commit_callbacks
):
    """A redaction that drops nobody fails verification (the person is still there): discarded, key kept."""
    from governance.storage import redaction

    monkeypatch.setattr(redaction, "subject_positions", lambda *a, **k: [])
    request = _execute(_approved(officers), officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.ERROR
    es = ErasureSnapshot.objects.get(request=request)
    assert es.verification == rules.Verification.FAILED and not es.successor_committed
    assert any("person's rows" in p for p in es.verification_problems)
    assert SnapshotKey.objects.get(dataset_version=german_credit_version).wrapped_key is not None


def test_a_request_cannot_be_read_without_the_role(make_user, officers, unit):
    from django.core.exceptions import PermissionDenied

    from governance.selectors.erasure import erasure_request_list

    service.erasure_request_record(subject_id="x-1", ground="a", actor=officers[0])
    with pytest.raises(PermissionDenied):
        erasure_request_list(user=make_user(roles.DATA_SCIENTIST, [unit]))
    assert erasure_request_list(user=officers[1]).count() == 1


def test_a_confirmed_legal_hold_keeps_its_snapshot_and_the_request_ends_partially(
    officers, german_credit_version, make_german_credit_version, unit, django_capture_on_commit_callbacks
):
    from datetime import date

    other = make_german_credit_version(unit, version="v2")
    first, second = officers
    hold = service.legal_hold_record(
        ground="b", justification="EU AI Act Art. 19 log retention of the scoring system.",
        review_on=date.today() + timedelta(days=30), dataset_version=german_credit_version, actor=first,
    )
    with pytest.raises(rules.DutyRefused):  # the recorder cannot confirm
        service.legal_hold_confirm(hold=hold, actor=first)
    service.legal_hold_confirm(hold=hold, actor=second)
    request = _approved(officers)
    actions = {s.dataset_version_id: s.action for s in request.approved_plan().snapshots}
    assert actions == {german_credit_version.pk: "keep_under_hold", other.pk: "redact"}
    request = _execute(request, second, django_capture_on_commit_callbacks)
    assert request.state == rules.State.PARTIALLY_COMPLETED, request.error
    assert SnapshotKey.objects.get(dataset_version=german_credit_version).wrapped_key is not None
    assert SnapshotKey.objects.get(dataset_version=other).wrapped_key is None
    assert "kept under legal hold" in request.outcome


def test_backups_become_unreadable_after_the_master_key_rotates(officers, german_credit_version,
                                                               django_capture_on_commit_callbacks):
    from governance.services.registry import master_key_rotate

    request = _execute(_approved(officers), officers[1], django_capture_on_commit_callbacks)
    with pytest.raises(Conflict, match="no master key rotation"):
        service.erasure_backups_check(request=request, actor=officers[1])
    master_key_rotate()
    request = service.erasure_backups_check(request=request, actor=officers[1])
    assert request.state == rules.State.COMPLETED_BACKUPS and request.closed_at is not None


def test_a_snapshot_in_use_by_a_queued_gate_run_waits(officers, german_credit_version, make_gate_model_version,
                                                      unit, gate_policy, django_capture_on_commit_callbacks):
    mv = make_gate_model_version(unit)
    run = GateRun.objects.create(model_version=mv, dataset_version=german_credit_version, policy=gate_policy,
                                 label_column="credit_risk", positive_label="good", seed=1)
    request = _approved(officers)
    assert request.approved_plan().snapshots[0].action == "wait_for_gate_run"
    request = _execute(request, officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.EXECUTING
    assert any("not finished" in o for o in service.erasure_outstanding(request))
    assert SnapshotKey.objects.get(dataset_version=german_credit_version).wrapped_key is not None
    GateRun.objects.filter(pk=run.pk).update(status=GateRun.Status.PASSED)
    request = _execute(request, officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.COMPLETED_LIVE


def test_a_successor_that_lost_another_persons_row_fails_verification(
    officers, german_credit_version, monkeypatch, django_capture_on_commit_callbacks
):
    from governance.storage import redaction

    real = redaction.subject_positions
    monkeypatch.setattr(redaction, "subject_positions", lambda *a, **k: [*real(*a, **k), 7])
    request = _execute(_approved(officers), officers[1], django_capture_on_commit_callbacks)
    es = ErasureSnapshot.objects.get(request=request)
    assert request.state == rules.State.ERROR and es.verification == rules.Verification.FAILED
    assert any("rows of other people differ" in p for p in es.verification_problems)
    assert SnapshotKey.objects.get(dataset_version=german_credit_version).wrapped_key is not None


def test_a_snapshot_whose_key_was_destroyed_already_is_skipped_and_said(
    officers, german_credit_version, make_german_credit_version, unit, django_capture_on_commit_callbacks
):
    from governance.services.registry import snapshot_key_destroy

    other = make_german_credit_version(unit, version="v2")
    snapshot_key_destroy(dataset_version=german_credit_version, reason="retention period over")
    request = _approved(officers)
    actions = {s.dataset_version_id: s.action for s in request.approved_plan().snapshots}
    assert actions == {german_credit_version.pk: "skip_already_destroyed", other.pk: "redact"}
    request = _execute(request, officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.COMPLETED_LIVE, request.error
    skipped = ErasureSnapshot.objects.get(request=request, predecessor=german_credit_version)
    assert skipped.done and skipped.successor is None and "destroyed" in skipped.note


def test_the_kept_hash_is_purged_after_its_retention_and_the_person_may_come_back(
    officers, german_credit_version, django_capture_on_commit_callbacks, german_credit_csv, settings
):
    from governance.services.registry import master_key_rotate

    request = _execute(_approved(officers), officers[1], django_capture_on_commit_callbacks)
    master_key_rotate()
    request = service.erasure_backups_check(request=request, actor=officers[1])
    assert service.erasure_subject_keys_purge() == []  # within the retention
    later = timezone.now() + timedelta(days=settings.CUSTOS_ERASURE_HASH_RETENTION_DAYS + 1)
    assert service.erasure_subject_keys_purge(now=later) == [request.reference]
    request.refresh_from_db()
    assert request.subject_key is None
    dataset_version_upload(dataset=german_credit_version.dataset, version="later", file=german_credit_csv,
                           file_format="csv", subject_column=credit.SUBJECT_COLUMN, actor=None)


def test_the_persons_per_row_gate_figures_are_removed_and_every_aggregate_stays(
    officers, german_credit_version, make_gate_model_version, unit, gate_policy, django_capture_on_commit_callbacks,
):
    """A real SHAP gate run explained the person's row: after the erasure that row's position and
    SHAP values are gone from the stored result, the aggregates are equal, the ledger says so in counts."""
    with django_capture_on_commit_callbacks(execute=True):
        run = gate_run_submit(model_version=make_gate_model_version(unit), dataset_version=german_credit_version,
                              label_column="risk", positive_label="1", policy=gate_policy, seed=5)
    run.refresh_from_db()
    before = run.result
    ex = before["explainability"]
    position = ex["explained_indices"][3]
    person = str(snapshot_frame(german_credit_version)[credit.SUBJECT_COLUMN].iloc[position])
    values_of = dict(zip(ex["explained_indices"], ex["raw_values"], strict=True))
    seq_before = LedgerEntry.objects.count()

    request = _approved(officers, subject_id=person)
    plan = request.approved_plan()
    assert [(g.gate_run_id, g.action) for g in plan.gate_results] == [(run.pk, rules.GateResultAction.SCRUB)]
    assert "1 gate result to scrub" in plan.summary()
    request = _execute(request, officers[1], django_capture_on_commit_callbacks)
    assert request.state == rules.State.COMPLETED_LIVE, request.error

    run.refresh_from_db()
    after = run.result["explainability"]
    assert position not in after["explained_indices"] and position not in after["background_indices"]
    assert after["explained_indices"] == [p for p in ex["explained_indices"] if p != position]
    assert after["background_indices"] == [p for p in ex["background_indices"] if p != position]
    assert after["raw_values"] == [values_of[p] for p in after["explained_indices"]]
    assert values_of[position] not in after["raw_values"]
    for name in ("importance", "shares", "ranking", "explained_count", "base_value", "additivity_error"):
        assert after[name] == ex[name], name
    for area in ("performance", "fairness", "checks", "verdict", "predictions"):
        assert run.result[area] == before[area], area
    assert run.status == before["verdict"]
    assert run.result_digest == hashlib.sha256(canonical_json(run.result)).hexdigest()
    assert run.result["redactions"] == [{
        "request": request.reference, "rows": 1, "explained_rows": 1,
        "background_rows": int(position in ex["background_indices"]),
        "previous_result_digest": hashlib.sha256(canonical_json(before)).hexdigest(),
    }]

    entry = LedgerEntry.objects.get(kind=GovernanceKind.RESULT_REDACTED, seq__gte=seq_before)
    assert entry.subject == run.ledger_subject
    assert entry.payload == {
        "run_id": run.pk, "request": request.reference, "rows_removed": 1, "explained_rows_removed": 1,
        "background_rows_removed": int(position in ex["background_indices"]), "result_sha256": run.result_digest,
    }
    text = json.dumps(entry.payload)
    assert person not in text and subject_key(person) not in text

    # A re-run of the worker's task changes nothing.
    seq = LedgerEntry.objects.count()
    assert service.erasure_run(request_id=request.pk) == rules.State.COMPLETED_LIVE
    assert LedgerEntry.objects.count() == seq
    assert GateRun.objects.get(pk=run.pk).result == run.result

    # Re-verification says why it cannot re-compute, naming the redaction.
    check = gate_run_reverify(reverification_id=gate_run_reverify_request(run=run, dispatch=False).pk)
    assert check.status == GateRunReverification.Status.REDACTED
    assert f"redacted by erasure {request.reference}" in check.differences[0]
