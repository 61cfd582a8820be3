"""The erasure demo: one request completed (its model version under review), one waiting for approval.

A small snapshot of new applicants (applicant-2001…2040, rows of the German credit data under
new synthetic ids) and a pre-screening model version trained on it, so that erasing one of them
touches nothing the other demo steps read.
"""

import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model

from ..models import BusinessUnit, Dataset, ErasureRequest, MLModel
from ..services import erasure
from ..services.registry import (
    dataset_create,
    dataset_version_upload,
    model_create,
    model_version_register,
    training_run_register,
)
from ..storage.artifacts import artifact_path
from . import credit

COMPLETED, WAITING = "applicant-2007", "applicant-2012"


def _snapshot_and_model(unit, actor):
    dataset = Dataset.objects.filter(business_unit=unit, name="loan-applications").first() or dataset_create(
        business_unit=unit, name="loan-applications", description="New applicants (demo: synthetic ids).", actor=actor
    )
    frame = credit.german_credit_frame().iloc[:40].copy()
    frame[credit.SUBJECT_COLUMN] = [f"applicant-{2001 + i}" for i in range(len(frame))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "applications.csv"
        frame.to_csv(path, index=False)
        snapshot = dataset_version_upload(
            dataset=dataset, version="2025-q1", file=path, file_format="csv", subject_column=credit.SUBJECT_COLUMN,
            personal_columns=credit.PERSONAL_COLUMNS, sensitive_columns=credit.SENSITIVE_COLUMNS, actor=actor,
        )
    scoring = MLModel.objects.get(business_unit=unit, name="credit-scoring").versions.order_by("version").last()
    model = model_create(
        business_unit=unit, name="credit-prescreen", intended_purpose="Pre-screen new loan applications.",
        risk_tier="high", annex_iii_category="creditworthiness", actor=actor,
    )
    version = model_version_register(model=model, version="0.1", artifact_format="skops",
                                     artifact=artifact_path(scoring.artifact_path).read_bytes(), actor=actor)
    training_run_register(business_unit=unit, inputs=[(snapshot, "train")], model_version=version,
                          name="train-credit-prescreen", actor=actor)


def erasure_requests(out):
    """Two erasure requests of the Data Protection Officers: one completed, one waiting for approval."""
    if ErasureRequest.objects.exists():
        out("  erasure: requests exist")
        return
    users = get_user_model().objects
    dora, piet = users.get(username="dora.dpo"), users.get(username="piet.privacy")
    unit = BusinessUnit.objects.get(slug="retail-credit")
    if not MLModel.objects.filter(business_unit=unit, name="credit-prescreen").exists():
        _snapshot_and_model(unit, users.get(username="pipeline.credit"))
    done = erasure.erasure_request_record(subject_id=COMPLETED, ground="b", actor=dora)
    erasure.erasure_identity_verify(request=done, evidence_reference="DPO mailbox, ticket 2025-118", actor=dora)
    erasure.erasure_plan(request=done, actor=dora)
    erasure.erasure_plan_approve(request=done, actor=piet)
    erasure.erasure_execute(request=done, actor=piet)
    erasure.erasure_run(request_id=done.pk)  # the worker's run, here at once (a no-op if eager ran it)
    done.refresh_from_db()
    waiting = erasure.erasure_request_record(subject_id=WAITING, ground="a", actor=dora)
    erasure.erasure_identity_verify(request=waiting, evidence_reference="DPO mailbox, ticket 2025-121", actor=dora)
    erasure.erasure_plan(request=waiting, actor=dora)
    out(f"  erasure: {done.reference} {done.state} (model version under review), "
        f"{waiting.reference} planned, waiting for a second officer's approval")
