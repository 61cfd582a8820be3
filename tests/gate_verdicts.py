"""Gate verdicts for tests of what follows one (releases, approvals, the admin, the API).

A run is recorded as a worker records one (``gate_run_finish``: ledgered, with its checks),
without computing its figures, on a small evaluation snapshot of the German credit data.
"""

import io

from governance.demo import credit
from governance.models import Dataset, GatePolicy, GateRun
from governance.services.gates import gate_policy_publish, gate_run_finish
from governance.services.registry import dataset_create, dataset_version_upload
from governance.services.releases import release_gate_result_record

POLICY = "test-gates"


def finished_gate_run(model_version, verdict="passed", *, checks=()):
    """A GateRun of MODEL_VERSION that ended with VERDICT (CHECKS, or one fairness check, as its result)."""
    unit = model_version.model.business_unit
    dataset = Dataset.objects.filter(business_unit=unit, name="gate-evaluation").first() or dataset_create(
        business_unit=unit, name="gate-evaluation"
    )
    dv = dataset.versions.first() or dataset_version_upload(
        dataset=dataset, version="v1", file=io.BytesIO(credit.german_credit_frame().head(100).to_csv(index=False).encode()),
        file_format="csv", subject_column=credit.SUBJECT_COLUMN, sensitive_columns=credit.SENSITIVE_COLUMNS,
    )
    policy = GatePolicy.objects.filter(name=POLICY).order_by("-version").first() or gate_policy_publish(
        name=POLICY, document=credit.credit_policy_document()
    )
    run = GateRun.objects.create(
        model_version=model_version, dataset_version=dv, policy=policy, label_column=credit.LABEL, positive_label="1",
        seed=0, status=GateRun.Status.RUNNING,
    )
    checks = list(checks) or [
        {"area": "fairness", "name": "demographic_parity_ratio by sex", "verdict": verdict, "value": 0.91,
         "limit": {"min": 0.8}, "reason": f"0.91 against the minimum 0.8: {verdict}"}
    ]
    result = {"format": "custos.gate-result/1", "verdict": verdict, "checks": checks,
              "reasons": [c["reason"] for c in checks if c["verdict"] != "passed"]}
    return gate_run_finish(run=run, result=result)


def record_gate_verdict(release, verdict="passed", *, checks=()):
    """Move RELEASE (gating) on with a finished gate run of VERDICT, as the end of a real run does."""
    return release_gate_result_record(release=release, run=finished_gate_run(release.model_version, verdict, checks=checks))
