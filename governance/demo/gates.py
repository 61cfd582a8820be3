"""Demo step of the release gates: the shipped high-risk default policy, a retail-credit
policy, and two gate runs on the German credit data — a model trained with `sex` on labels
skewed against women (fails) and one without `sex` (passes)."""

import io

import skops.io as sio
from django.contrib.auth import get_user_model

from . import credit
from .credit import credit_policy_document, train_fair_model, train_skewed_model
from ..models import BusinessUnit, Dataset, DatasetVersion, GatePolicy, GateRun, MLModel
from ..services.gates import gate_policy_assign, gate_policy_install_defaults, gate_policy_publish, gate_run_submit
from ..services.gating import gate_run_execute
from ..services.registry import dataset_create, dataset_version_upload, model_create, model_version_register

UNIT = "retail-credit"
MODEL = "credit-scoring-gbm"
POLICY = "retail-credit"
DATASET = "german-credit-evaluation"


def _evaluation_version(unit, frame):
    dataset = Dataset.objects.filter(business_unit=unit, name=DATASET).first() or dataset_create(
        business_unit=unit, name=DATASET, description="German credit data logged as a gate evaluation snapshot."
    )
    dv = DatasetVersion.objects.filter(dataset=dataset, version="1").first()
    if dv is None:
        data = io.BytesIO(frame.to_csv(index=False).encode())
        dv = dataset_version_upload(
            dataset=dataset, version="1", file=data, file_format="csv",
            subject_column=credit.SUBJECT_COLUMN, personal_columns=credit.PERSONAL_COLUMNS,
            sensitive_columns=credit.SENSITIVE_COLUMNS,
        )
    return dv


def gate_runs(out):
    gate_policy_install_defaults(out=out)
    unit = BusinessUnit.objects.filter(slug=UNIT).first()
    if unit is None:
        return
    model = MLModel.objects.filter(business_unit=unit, name=MODEL).first()
    if model is not None and GateRun.objects.filter(model_version__model=model).exists():
        out(f"  gate runs of {MODEL} exist")
        return
    policy = GatePolicy.objects.filter(name=POLICY).order_by("-version").first() or gate_policy_publish(
        name=POLICY, document=credit_policy_document()
    )
    frame = credit.german_credit_frame()
    dv = _evaluation_version(unit, frame)
    model = model or model_create(
        business_unit=unit, name=MODEL, intended_purpose="Score consumer credit applications (demo of release gates).",
        risk_tier="high", annex_iii_category="creditworthiness",
    )
    gate_policy_assign(policy_name=POLICY, model=model)
    scientist = get_user_model().objects.filter(username="dana.scientist").first()
    for version, train, description in [
        ("1.0", train_skewed_model, "Trained with `sex` on labels skewed against women: must fail its gate."),
        ("1.1", train_fair_model, "Without `sex` among its inputs: passes its gate."),
    ]:
        mv = model.versions.filter(version=version).first() or model_version_register(
            model=model, version=version, artifact=sio.dumps(train(frame)), artifact_format="skops",
            description=description,
        )
        run = gate_run_submit(model_version=mv, dataset_version=dv, label_column=credit.LABEL, positive_label="1",
                              policy=policy, seed=20260101, actor=scientist)
        run.refresh_from_db()
        if run.status == GateRun.Status.QUEUED:  # no eager worker (or inside a test transaction)
            run = gate_run_execute(run_id=run.pk)
        out(f"  gate run {run.pk}: {MODEL} {version} -> {run.status}")
