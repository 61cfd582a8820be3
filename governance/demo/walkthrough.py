"""Demo step for a newcomer's walk through the README, on the credit-scoring model (the one with
real lineage): gate runs of 1.0 and 1.1 on the holdout snapshot under the high-risk default
policy, a production request of 1.0 that the validator approved and that now awaits the
officer's decision, a production request of 1.1 whose inconclusive gate awaits the validator,
and version 1.2, registered with its training run and never requested: the pipeline recipe's."""

import skops.io as sio
from django.contrib.auth import get_user_model

from ..models import BusinessUnit, DatasetVersion, GateRun, MLModel, ReleaseRequest
from ..rules import roles
from ..rules.releases import State
from ..services.gates import gate_run_submit
from ..services.gating import gate_run_execute
from ..services.registry import model_version_register, training_run_register
from ..services.releases import decisions_open_to, release_decide, release_request
from . import credit

MODEL = "credit-scoring"
RECIPE_VERSION = "1.2"


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
    runs = {}
    for version in ("1.0", "1.1"):
        mv = model.versions.get(version=version)
        run = gate_run_submit(model_version=mv, dataset_version=holdout, label_column=credit.LABEL,
                              positive_label="1", seed=20260101, actor=pipeline)
        run.refresh_from_db()
        if run.status == GateRun.Status.QUEUED:  # no eager worker (or inside a test transaction)
            run = gate_run_execute(run_id=run.pk)
        runs[version] = run
        out(f"  walkthrough: gate run {run.pk} of {MODEL} {version} on the holdout -> {run.status}")
    waiting = {}
    for version in ("1.0", "1.1"):
        release = release_request(model_version=runs[version].model_version, environment="production",
                                  actor=pipeline)
        waiting[version] = ReleaseRequest.objects.get(pk=release.pk)
    first = waiting["1.0"]
    if first.state == State.AWAITING_APPROVAL:
        open_to = {d for d, _ in decisions_open_to(release=first, user=vera)}
        if "override" in open_to:
            release_decide(release=first, actor=vera, role=roles.MODEL_RISK_VALIDATOR, decision="override",
                           justification="Wide fairness intervals on 200 holdout rows; the full-data run is within "
                                         "policy. Accepted for the officer's decision.")
        release_decide(release=first, actor=vera, role=roles.MODEL_RISK_VALIDATOR, decision="approve",
                       justification="Independent validation of the holdout figures and the lineage.")
    for version, release in waiting.items():
        release.refresh_from_db()
        out(f"  walkthrough: release #{release.pk} of {MODEL} {version} -> production: {release.state}"
            f" (gate {release.gate_verdict or 'pending'})")
    pipeline_model, params, metrics = credit.train_credit_model(credit.german_credit_frame().iloc[:800], seed=1)
    older = model.versions.get(version="1.1").training_run
    mv = model_version_register(model=model, version=RECIPE_VERSION, artifact=sio.dumps(pipeline_model),
                                artifact_format="skops", actor=pipeline)
    training_run_register(
        business_unit=unit, inputs=[(i.dataset_version, i.role) for i in older.inputs.all()], model_version=mv,
        code_version=older.code_version, name=f"train-{MODEL}-{RECIPE_VERSION}", parameters=params, metrics=metrics,
        library_versions=credit.library_versions(), seeds={"random_state": 1}, actor=pipeline,
    )
    out(f"  walkthrough: {MODEL} {RECIPE_VERSION} registered, not yet requested (the README's pipeline recipe)")
