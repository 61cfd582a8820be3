"""One rendering of the specimen report on a real ledger, shared by the read-back tests."""

from dataclasses import dataclass

import pytest

from reports.pdf import render_pdf
from tests.reports.specimen import Specimen, rolled_back_evidence, specimen


@dataclass
class Rendered:
    specimen: Specimen
    pdf: bytes


@pytest.fixture(scope="module")
def evidence(django_db_setup, django_db_blocker, signing_key_dir, tmp_path_factory):
    return rolled_back_evidence(django_db_blocker, signing_key_dir, tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def rendered(evidence) -> Rendered:
    s = specimen(evidence)
    return Rendered(s, render_pdf(s.html, **s.render_kwargs()))


# --- demo-like evidence for the documents: a credit model version with its training run, a
# finished gate run on the German credit data and an approved production release ---------------

WHY = "Reviewed the gate evidence, the lineage and the datasets."


def committed(fn, **kwargs):
    """Call FN, then run what it left for after the commit (eager Celery tasks), as a commit would."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        return fn(**kwargs)


@pytest.fixture
def reported_version(db, unit, make_user, gate_policy, make_gate_model_version, make_german_credit_version):
    """The fair credit model of `unit` with its training run, gated (passed) on the German credit
    data and approved for production by a validator and an officer."""
    from governance.demo.credit import library_versions
    from governance.models import GateRun
    from governance.rules import roles
    from governance.services.gates import gate_policy_assign, gate_run_submit
    from governance.services.registry import code_version_register, training_run_register
    from governance.services.releases import release_decide, release_request

    gate_policy_assign(policy_name=gate_policy.name, risk_tier="high")
    scientist = make_user(roles.DATA_SCIENTIST, [unit], username="sci")
    credit_model_version = make_gate_model_version(unit, "fair", version="2.0", name="credit-scoring")
    code, _ = code_version_register(business_unit=unit, repository_url="https://git.example.com/credit/scoring",
                                    commit_sha="b" * 40, actor=scientist)
    # Trained on one snapshot, gated on another (a gate refuses the data the model was trained on).
    german_credit_version = make_german_credit_version(unit, version="evaluation")
    training_run_register(business_unit=unit, inputs=[(make_german_credit_version(unit, version="train"), "train")],
                          model_version=credit_model_version, code_version=code, name="train-credit-scoring",
                          parameters={"estimator": "GradientBoostingClassifier", "n_estimators": 100},
                          metrics={"accuracy": 0.8}, library_versions=library_versions(), seeds={"random_state": 0},
                          actor=scientist)
    run = committed(gate_run_submit, model_version=credit_model_version, dataset_version=german_credit_version,
                    label_column="risk", positive_label="1", policy=gate_policy, seed=7, actor=scientist)
    run = GateRun.objects.get(pk=run.pk)
    assert run.status == GateRun.Status.PASSED, run.reason
    release = release_request(model_version=credit_model_version, environment="production", actor=scientist)
    release_decide(release=release, actor=make_user(roles.MODEL_RISK_VALIDATOR, [unit], username="val"),
                   role=roles.MODEL_RISK_VALIDATOR, decision="approve", justification=WHY)
    committed(release_decide, release=release, actor=make_user(roles.COMPLIANCE_OFFICER, [unit], username="off"),
              role=roles.COMPLIANCE_OFFICER, decision="approve", justification=WHY)
    return credit_model_version


@pytest.fixture
def issue(db):
    """issue(kind, subject, actor=None) -> the issued Report, rendered here as the eager worker would."""
    from reports.services.reports import report_render, report_request

    def make(kind, subject, actor=None):
        return report_render(report_id=report_request(kind=kind, subject=subject, actor=actor, dispatch=False).pk)

    return make
