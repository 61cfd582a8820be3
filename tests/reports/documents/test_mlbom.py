"""The ML-BOM: CycloneDX 1.6 that cyclonedx-python-lib's strict JSON validator accepts, carrying
the gate run's figures per slice with their confidence intervals and the datasets' hashes."""

import json

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from audit.services import checkpoint_create
from governance.models import GateRun
from reports.documents.render import render_document


def test_the_ml_bom_passes_the_strict_validator_and_carries_the_stored_figures(reported_version):
    checkpoint = checkpoint_create()
    content = render_document("ml-bom", reported_version.ledger_subject, user=None, checkpoint=checkpoint).content
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(content.decode()) is None
    bom = json.loads(content)
    model = next(c for c in bom["components"] if c["type"] == "machine-learning-model")
    assert model["hashes"] == [{"alg": "SHA-256", "content": reported_version.artifact_sha256}]
    run = GateRun.objects.get(model_version=reported_version)
    metrics = model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    dpd = next(c for c in run.result["checks"] if c["name"] == "demographic_parity_difference by sex")
    shown = next(m for m in metrics if m["type"] == dpd["name"])
    assert float(shown["value"]) == float(f"{dpd['value']:.6g}")
    assert float(shown["confidenceInterval"]["lowerBound"]) == float(f"{dpd['ci'][0]:.6g}")
    female = next(g for g in run.result["fairness"]["features"][0]["groups"] if g["group"] == "female")
    assert any(m["slice"].startswith("sex = female") and m["type"] == "selection_rate"
               and float(m["value"]) == float(f"{female['selection_rate']:.6g}") for m in metrics)
    assert model["modelCard"]["considerations"]["fairnessAssessments"]
    data = [c for c in bom["components"] if c["type"] == "data"]
    assert {c["hashes"][0]["content"] for c in data} == {
        dv.sha256 for dv in [run.dataset_version, *[i.dataset_version for i in reported_version.training_run.inputs.all()]]
    }
    # The same evidence, the same bytes.
    assert render_document("ml-bom", reported_version.ledger_subject, user=None, checkpoint=checkpoint).content == content
