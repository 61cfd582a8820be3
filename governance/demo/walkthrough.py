"""Demo step for a newcomer's walk through the README, on the credit-scoring model (the one with
real lineage), gated by the high-risk default policy on the holdout snapshot:

- 1.1 → production: the validator overrode its inconclusive gate and approved; it awaits the
  officer's decision ("Still needs: Compliance Officer");
- 1.2 → production: its inconclusive gate awaits the validator (an override comes first);
- 1.3: registered with its training run and never requested — the README's pipeline recipe.
"""

import skops.io as sio
from django.contrib.auth import get_user_model

from ..models import BusinessUnit, DatasetVersion, GateRun, MLModel
from ..rules import roles
from ..services.gates import gate_run_submit
from ..services.gating import gate_run_execute
from ..services.registry import model_version_register, training_run_register
from ..services.releases import decisions_open_to, release_decide, release_request
from . import credit

MODEL = "credit-scoring"
FOR_THE_VALIDATOR = "1.2"
RECIPE_VERSION = "1.3"


def _register(model, unit, version, c, pipeline):
    """Another logistic version of MODEL, trained like 1.1 (same data, code) with C=C."""
    trained, params, metrics = credit.train_credit_model(credit.german_credit_frame().iloc[:800], kind="logistic",
                                                         c=c)
    older = model.versions.get(version="1.1").training_run
    mv = model_version_register(model=model, version=version, artifact=sio.dumps(trained), artifact_format="skops",
                                actor=pipeline)
    training_run_register(
        business_unit=unit, inputs=[(i.dataset_version, i.role) for i in older.inputs.all()], model_version=mv,
        code_version=older.code_version, name=f"train-{MODEL}-{version}", parameters=params, metrics=metrics,
        library_versions=credit.library_versions(), seeds={"random_state": 0}, actor=pipeline,
    )
    return mv


def _gate(mv, holdout, pipeline, out):
    run = gate_run_submit(model_version=mv, dataset_version=holdout, label_column=credit.LABEL, positive_label="1",
                          seed=20260101, actor=pipeline)
    run.refresh_from_db()
    if run.status == GateRun.Status.QUEUED:  # no eager worker (or inside a test transaction)
        run = gate_run_execute(run_id=run.pk)
    out(f"  walkthrough: gate run {run.pk} of {mv} on the holdout -> {run.status}")
    return run


def walkthrough(out):
    unit = BusinessUnit.objects.filter(slug="retail-credit").first()
    model = unit and MLModel.objects.filter(business_unit=unit, name=MODEL).first()
    if model is None:
        out(f"  walkthrough: skipped (no {MODEL} model)")
        return
    if model.versions.filter(version=RECIPE_VERSION).exists():
        out(f"  walkthrough: {MODEL} {RECIPE_VERSION} exists")
        return
    User = get_user_model()
    pipeline, vera = User.objects.get(username="pipeline.credit"), User.objects.get(username="vera.validator")
    holdout = DatasetVersion.objects.get(dataset__business_unit=unit, dataset__name="german-credit",
                                         version="2024-q1-holdout")
    for_officer = model.versions.get(version="1.1")
    _gate(for_officer, holdout, pipeline, out)
    release = release_request(model_version=for_officer, environment="production", actor=pipeline)
    offered = {decision for decision, _ in decisions_open_to(release=release, user=vera)}
    if "override" in offered:
        release_decide(release=release, actor=vera, role=roles.MODEL_RISK_VALIDATOR, decision="override",
                       justification="The fairness intervals on 200 holdout rows straddle the limits; the figures "
                                     "themselves are within policy. Accepted for the officer's decision.")
    if "approve" in {d for d, _ in decisions_open_to(release=release, user=vera)}:
        release_decide(release=release, actor=vera, role=roles.MODEL_RISK_VALIDATOR, decision="approve",
                       justification="Independent validation of the holdout figures and the lineage.")
    release.refresh_from_db()
    out(f"  walkthrough: release #{release.pk} ({for_officer} -> production) {release.state}, gate "
        f"{release.gate_verdict}: for the officer (colin.compliance)")
    for_validator = _register(model, unit, FOR_THE_VALIDATOR, 0.5, pipeline)
    _gate(for_validator, holdout, pipeline, out)
    release = release_request(model_version=for_validator, environment="production", actor=pipeline)
    release.refresh_from_db()
    out(f"  walkthrough: release #{release.pk} ({for_validator} -> production) {release.state}, gate "
        f"{release.gate_verdict}: for the validator (vera.validator)")
    _register(model, unit, RECIPE_VERSION, 2.0, pipeline)
    out(f"  walkthrough: {MODEL} {RECIPE_VERSION} registered, never requested: the README's pipeline recipe")
