import hashlib
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import LedgerEntry
from governance.rules import roles
from governance.gates.results import differences
from governance.demo.credit import credit_policy_document
from governance.gates.policy import HIGH_RISK_DEFAULT, policy_digest
from governance.models import GatePolicy, GateRun, ImmutableError
from governance.selectors.gates import gate_policy_for_model
from governance.services.gates import (
    gate_policy_assign,
    gate_policy_publish,
    gate_run_reverify,
    gate_run_reverify_request,
    gate_run_submit,
)


@pytest.fixture
def submit(django_capture_on_commit_callbacks):
    """gate_run_submit, then run the task queued for after the commit (as eager Celery does)."""

    def call(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            run = gate_run_submit(**kwargs)
        run.refresh_from_db()
        return run

    return call


def _entries(kind, subject=None):
    qs = LedgerEntry.objects.filter(kind=kind)
    return list(qs.filter(subject=subject) if subject else qs)


def test_publishing_versions_a_policy_and_ledgers_its_digest(db, make_user):
    officer = make_user(roles.HEAD_OF_MODEL_RISK)
    v1 = gate_policy_publish(name="credit", document=credit_policy_document(), actor=officer)
    assert (v1.version, v1.digest) == (1, policy_digest(credit_policy_document()))
    changed = credit_policy_document()
    changed["fairness"]["min_group_size"] = 50
    v2 = gate_policy_publish(name="credit", document=changed, actor=officer)
    assert v2.version == 2 and v2.digest != v1.digest
    entry = _entries("gates.policy_published", v2.ledger_subject)[0]
    assert entry.payload == {"name": "credit", "version": 2, "digest": v2.digest, "previous_digest": v1.digest}
    assert entry.actor == officer.username
    with pytest.raises(ValidationError, match="identical"):
        gate_policy_publish(name="credit", document=changed, actor=officer)
    with pytest.raises(ImmutableError):
        v1.save()


def test_invalid_policy_and_unauthorised_publisher_are_refused(db, make_user):
    with pytest.raises(ValidationError, match="fairness/bootstrap/confidence"):
        gate_policy_publish(name="bad", document={**HIGH_RISK_DEFAULT, "fairness": {"bootstrap": {"confidence": 2}}})
    # Publishing changes every unit's gates: a unit's own people may not, whatever their role.
    for role in (roles.DATA_SCIENTIST, roles.COMPLIANCE_OFFICER, roles.MODEL_RISK_VALIDATOR):
        with pytest.raises(PermissionDenied, match="organisation-wide"):
            gate_policy_publish(name="mine", document=HIGH_RISK_DEFAULT, actor=make_user(role))
    assert not GatePolicy.objects.exists() and not _entries("gates.policy_published")


def test_only_organisation_wide_authority_chooses_a_risk_tiers_policy(db, unit, make_user):
    gate_policy_publish(name="credit", document=credit_policy_document())
    for role in (roles.COMPLIANCE_OFFICER, roles.MODEL_RISK_VALIDATOR):
        with pytest.raises(PermissionDenied, match="organisation-wide"):
            gate_policy_assign(policy_name="credit", risk_tier="high", actor=make_user(role, [unit]))
    assignment = gate_policy_assign(policy_name="credit", risk_tier="high", actor=make_user(roles.HEAD_OF_MODEL_RISK))
    assert assignment.risk_tier == "high" and _entries("gates.policy_assigned", assignment.ledger_subject)


def test_assignment_per_tier_with_a_model_override(db, unit, make_gate_model_version):
    mv = make_gate_model_version(unit)
    gate_policy_publish(name="high-default", document=HIGH_RISK_DEFAULT)
    override = gate_policy_publish(name="retail-credit", document=credit_policy_document())
    assert gate_policy_for_model(mv.model) is None
    gate_policy_assign(policy_name="high-default", risk_tier="high")
    assert gate_policy_for_model(mv.model).name == "high-default"
    gate_policy_assign(policy_name="retail-credit", model=mv.model)
    assert gate_policy_for_model(mv.model) == override
    newer = gate_policy_publish(name="retail-credit", document={**credit_policy_document(), "description": "v2"})
    assert gate_policy_for_model(mv.model) == newer  # an assignment follows the latest version
    assert len(_entries("gates.policy_assigned")) == 2
    with pytest.raises(ValidationError):
        gate_policy_assign(policy_name="nope", risk_tier="high")


def test_fair_model_passes_and_skewed_model_fails(submit, unit, make_user, gate_policy, german_credit_version,
                                                  make_gate_model_version):
    scientist = make_user(roles.DATA_SCIENTIST, [unit])
    fair = submit(model_version=make_gate_model_version(unit, "fair"), dataset_version=german_credit_version,
                           label_column="risk", positive_label="1", policy=gate_policy, seed=7, actor=scientist)
    skewed = submit(model_version=make_gate_model_version(unit, "skewed"),
                             dataset_version=german_credit_version, label_column="risk", positive_label="1",
                             policy=gate_policy, seed=7, actor=scientist)
    fair.refresh_from_db()
    skewed.refresh_from_db()
    assert fair.status == GateRun.Status.PASSED, fair.reason
    assert skewed.status == GateRun.Status.FAILED
    assert "demographic_parity_ratio by sex" in skewed.reason
    assert fair.result["model_sha256"] == fair.model_version.artifact_sha256
    assert fair.result["dataset_sha256"] == german_credit_version.sha256
    # the ledger holds submission, start and finish; the finish carries the summary
    kinds = [e.kind for e in LedgerEntry.objects.filter(subject=skewed.ledger_subject)]
    assert kinds == ["gates.run_submitted", "gates.run_started", "gates.run_finished"]
    finished = _entries("gates.run_finished", skewed.ledger_subject)[0].payload
    assert finished["verdict"] == "failed" and finished["result_digest"] == skewed.result_digest
    assert finished["predictions_digest"] == skewed.result["predictions"]["digest"]
    assert "raw_values" not in str(finished) and "applicant" not in str(finished)
    # the fair model's later version is compared against the passed run (regression, nDCG)
    later = submit(model_version=make_gate_model_version(unit, "fair"), dataset_version=german_credit_version,
                            label_column="risk", positive_label="1", policy=gate_policy, seed=7, actor=scientist)
    later.refresh_from_db()
    assert later.baseline == fair
    stability = [c for c in later.result["checks"] if c["name"] == "ranking stability (nDCG)"][0]
    assert stability["value"] == pytest.approx(1.0)
    regression = [c for c in later.result["checks"] if c["name"] == "roc_auc regression"][0]
    assert regression["previous"] == fair.result["performance"]["roc_auc"]


def test_reverify_reproduces_and_detects_tampering(submit, unit, make_user, gate_policy, german_credit_version,
                                                   make_gate_model_version, django_capture_on_commit_callbacks):
    run = submit(model_version=make_gate_model_version(unit), dataset_version=german_credit_version,
                          label_column="risk", positive_label="1", policy=gate_policy, seed=3)
    run.refresh_from_db()
    auditor = make_user(roles.AUDITOR)
    with django_capture_on_commit_callbacks(execute=True):  # the worker's task runs after the commit
        check = gate_run_reverify_request(run=run, actor=auditor)
    check.refresh_from_db()
    assert check.status == "reproduced" and check.differences == [] and check.finished_at is not None
    assert _entries("gates.run_reverified", run.ledger_subject)[0].payload["reproduced"] is True
    tampered = run.result
    tampered["fairness"]["features"][0]["groups"][0]["selection_rate"] += 0.01
    GateRun.objects.filter(pk=run.pk).update(result=tampered)  # someone edited the stored result
    run.refresh_from_db()
    check = gate_run_reverify(reverification_id=gate_run_reverify_request(run=run, dispatch=False).pk)
    assert check.status == "differs" and any("selection_rate" in d for d in check.differences)
    assert _entries("gates.run_reverified", run.ledger_subject)[-1].payload["reproduced"] is False
    scientist = make_user(roles.DATA_SCIENTIST, [unit])
    with pytest.raises(PermissionDenied):
        gate_run_reverify_request(run=run, actor=scientist)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"label_column": "outcome"}, "label column 'outcome' is not in"),
        ({"policy_patch": {"sensitive_features": [{"column": "religion"}]}}, "Sensitive features not in"),
        # Intersections of the declared sensitive columns (sex, age) naming another column: was a
        # run in error with only "KeyError: 'job'" as its reason.
        ({"policy_patch": {"sensitive_features": [], "intersections": [["sex", "job"]]}},
         "intersection sex & job names job, which is not among the sensitive features checked"),
        # Cut points on a text column: every row fell into one "(missing)" group (inconclusive,
        # "fewer than two groups") instead of saying what is wrong.
        ({"policy_patch": {"sensitive_features": [{"column": "sex", "cut_points": [1]}]}},
         "bins 'sex' with cut_points, but it holds string values"),
    ],
)
def test_bad_input_known_at_submission_is_refused(unit, german_credit_version, make_gate_model_version, kwargs,
                                                  message):
    document = credit_policy_document()
    document["fairness"] = {**document["fairness"], **kwargs.pop("policy_patch", {})}
    policy = gate_policy_publish(name="p", document=document)
    args = {"label_column": "risk", "positive_label": "1", **kwargs}
    with pytest.raises(ValidationError, match=message):
        gate_run_submit(model_version=make_gate_model_version(unit), dataset_version=german_credit_version,
                        policy=policy, **args)
    assert not GateRun.objects.exists() and not _entries("gates.run_submitted")


def test_bad_input_found_while_running_is_an_error_with_the_reason(submit, unit, gate_policy, make_german_credit_version,
                                                                   make_gate_model_version, tmp_path):
    from governance.demo.credit import german_credit_frame

    df = german_credit_frame()
    df.loc[::7, "risk"] = 2  # a third label value: only visible in the data
    path = tmp_path / "three-labels.csv"
    df.to_csv(path, index=False)
    dv = make_german_credit_version(unit, version="three-labels", path=path)
    run = submit(model_version=make_gate_model_version(unit), dataset_version=dv, label_column="risk",
                          positive_label="1", policy=gate_policy)
    run.refresh_from_db()
    assert run.status == GateRun.Status.ERROR
    assert "has 3 distinct values; a gate needs two classes" in run.reason
    payload = _entries("gates.run_finished", run.ledger_subject)[0].payload
    assert payload["verdict"] == "error"
    # The ledger binds the reason by digest without holding its words (they may quote data).
    assert payload["reason_sha256"] == hashlib.sha256(run.reason.encode()).hexdigest()
    assert "distinct values" not in json.dumps(payload)


def test_submission_needs_a_policy_and_unit_access(unit, other_unit, make_user, german_credit_version,
                                                   make_gate_model_version):
    mv = make_gate_model_version(unit)
    with pytest.raises(ValidationError, match="No gate policy is assigned"):
        gate_run_submit(model_version=mv, dataset_version=german_credit_version, label_column="risk",
                        positive_label="1")
    outsider = make_user(roles.DATA_SCIENTIST, [other_unit])
    policy = gate_policy_publish(name="x", document=credit_policy_document())
    with pytest.raises(PermissionDenied):
        gate_run_submit(model_version=mv, dataset_version=german_credit_version, label_column="risk",
                        positive_label="1", policy=policy, actor=outsider)


def test_snapshot_whose_columns_do_not_fit_the_model_is_refused_at_submission(
        unit, gate_policy, make_german_credit_version, make_gate_model_version, tmp_path):
    from governance.demo.credit import german_credit_frame

    path = tmp_path / "no-duration.csv"
    german_credit_frame().drop(columns=["duration"]).to_csv(path, index=False)
    dv = make_german_credit_version(unit, version="no-duration", path=path)
    with pytest.raises(ValidationError, match="lacks the model's input columns: duration"):
        gate_run_submit(model_version=make_gate_model_version(unit), dataset_version=dv, label_column="risk",
                        positive_label="1", policy=gate_policy)
    assert not GateRun.objects.exists()


def test_an_officer_assigns_policies_only_to_models_of_their_units(db, unit, other_unit, make_user,
                                                                    make_gate_model_version):
    mv = make_gate_model_version(unit)
    gate_policy_publish(name="retail-credit", document=credit_policy_document())
    outsider = make_user(roles.COMPLIANCE_OFFICER, [other_unit])
    with pytest.raises(PermissionDenied):
        gate_policy_assign(policy_name="retail-credit", model=mv.model, actor=outsider)
    assert gate_policy_for_model(mv.model) is None and not _entries("gates.policy_assigned")
    gate_policy_assign(policy_name="retail-credit", model=mv.model, actor=make_user(roles.COMPLIANCE_OFFICER, [unit]))
    assert gate_policy_for_model(mv.model).name == "retail-credit"


def test_a_snapshot_whose_data_key_was_destroyed_is_refused_at_submission(unit, gate_policy, german_credit_version,
                                                                          make_gate_model_version):
    from governance.services.registry import snapshot_key_destroy

    snapshot_key_destroy(dataset_version=german_credit_version, reason="erasure request 7")
    with pytest.raises(ValidationError, match="data key of this dataset version has been destroyed"):
        gate_run_submit(model_version=make_gate_model_version(unit), dataset_version=german_credit_version,
                        label_column="risk", positive_label="1", policy=gate_policy)
    assert not GateRun.objects.exists() and not _entries("gates.run_submitted")


def test_the_snapshot_a_model_version_was_trained_on_is_refused_at_submission(unit, gate_policy,
                                                                              make_german_credit_version,
                                                                              make_credit_model_version):
    train = make_german_credit_version(unit, version="train")
    holdout = make_german_credit_version(unit, version="holdout")
    mv = make_credit_model_version(unit, dataset_version=train)
    with pytest.raises(ValidationError, match="This dataset version trained the model version"):
        gate_run_submit(model_version=mv, dataset_version=train, label_column="risk", positive_label="1",
                        policy=gate_policy)
    assert not GateRun.objects.exists()
    assert gate_run_submit(model_version=mv, dataset_version=holdout, label_column="risk", positive_label="1",
                           policy=gate_policy).status == GateRun.Status.QUEUED


def test_the_baseline_is_the_run_behind_the_latest_approved_release(submit, unit, make_user, gate_policy,
                                                                     german_credit_version, make_gate_model_version):
    from governance.selectors.gates import gate_run_baseline
    from governance.services.releases import release_decide, release_gate_result_record, release_request

    scientist = make_user(roles.DATA_SCIENTIST, [unit])

    def passed_run(version):
        run = submit(model_version=make_gate_model_version(unit, "fair", version=version),
                     dataset_version=german_credit_version, label_column="risk", positive_label="1",
                     policy=gate_policy, seed=7, actor=scientist)
        assert run.status == GateRun.Status.PASSED, run.reason
        return run

    in_use, newer = passed_run("1.0"), passed_run("2.0")
    candidate = make_gate_model_version(unit, "fair", version="3.0")
    assert gate_run_baseline(candidate, gate_policy) == newer  # nothing approved yet: the latest passed run

    release = release_request(model_version=in_use.model_version, environment="production", actor=scientist)
    release_gate_result_record(release=release, run=in_use)
    assert gate_run_baseline(candidate, gate_policy) == newer  # requested, not approved: not yet the model in use
    for role in (roles.MODEL_RISK_VALIDATOR, roles.COMPLIANCE_OFFICER):
        release_decide(release=release, actor=make_user(role, [unit]), role=role, decision="approve",
                       justification="Reviewed the gate evidence and the lineage.")
    release.refresh_from_db()
    assert release.state == "approved"
    assert gate_run_baseline(candidate, gate_policy) == in_use  # the approved version, as it was judged
    assert gate_run_baseline(in_use.model_version, gate_policy) is None  # nothing earlier than version 1.0
    # A run under another policy version never compares like with like: no baseline (not applicable).
    stricter = gate_policy_publish(name=gate_policy.name, document={**gate_policy.document, "description": "v2"})
    assert gate_run_baseline(candidate, stricter) is None


def test_a_wrongly_typed_column_is_refused_at_submission_naming_column_and_type(unit, gate_policy, tmp_path,
                                                                                 make_credit_model_version,
                                                                                 make_german_credit_version):
    """Known from the registered schemas (the training snapshot's and the evaluation snapshot's),
    before anything runs; the message names the column and both types, never the value."""
    from governance.demo.credit import german_credit_frame

    df = german_credit_frame()
    df["duration"] = df["duration"].astype(object)
    df.loc[17, "duration"] = "three"
    path = tmp_path / "mistyped.csv"
    df.to_csv(path, index=False)
    dv = make_german_credit_version(unit, version="mistyped", path=path)
    with pytest.raises(ValidationError) as err:
        gate_run_submit(model_version=make_credit_model_version(unit), dataset_version=dv, label_column="risk",
                        positive_label="1", policy=gate_policy)
    message = " ".join(err.value.messages)
    assert "The column 'duration' holds string values; the model was trained on it as numbers (int64)." in message
    assert "three" not in message
    assert not GateRun.objects.exists()
