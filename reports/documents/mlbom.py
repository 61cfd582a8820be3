"""The machine-readable model card of a model version: a CycloneDX 1.6 ML-BOM.

One ``machine-learning-model`` component (the artifact, its SHA-256, and a ``modelCard`` with
the training parameters, the gate runs' figures per slice with their confidence intervals, and
the fairness assessments), and one ``data`` component per dataset version with its hash,
classification and sensitive columns. Built from ``VersionEvidence`` only, with sorted keys, a
fixed serial number (UUID 5 of the subject and checkpoint) and the checkpoint's time, so the
same evidence gives the same bytes.
"""

from __future__ import annotations

import json
import uuid

from ..rules.documents import TEMPLATE_VERSION
from .evidence import VersionEvidence, iso

BOM_NAMESPACE = uuid.UUID("0b7f3d2e-5c1a-5e8f-9d24-6a1c0e7b9f31")


def _number(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def ml_bom(ev: VersionEvidence) -> dict:
    mv, model, run = ev.model_version, ev.model, ev.training_run
    model_ref = mv.ledger_subject
    metrics = []
    fairness = []
    for g in ev.gate_runs:
        slice_all = f"all rows of {g['dataset']} (gate run {g['pk']})"
        for name, value in g["performance"]:
            metrics.append({"type": name, "value": _number(value), "slice": slice_all})
        for feature in g["fairness"]:
            for group in feature["groups"]:
                for metric in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"):
                    if group.get(metric) is not None:
                        metrics.append({"type": metric, "value": _number(group[metric]),
                                        "slice": f"{feature['name']} = {group['group']} (n={group['count']}, "
                                                 f"gate run {g['pk']})"})
        for check in g["checks"]:
            if check.get("area") != "fairness" or check.get("value") is None:
                continue
            entry = {"type": check["name"], "value": _number(check["value"]),
                     "slice": f"{check.get('feature', '')} groups (gate run {g['pk']})"}
            if check.get("ci"):
                entry["confidenceInterval"] = {"lowerBound": _number(check["ci"][0]),
                                               "upperBound": _number(check["ci"][1])}
            metrics.append(entry)
            fairness.append({
                "groupAtRisk": f"groups by {check.get('feature', 'a sensitive feature')}",
                "benefits": f"{check['name']} = {_number(check['value'])}"
                            + (f", 95% CI [{_number(check['ci'][0])}, {_number(check['ci'][1])}]" if check.get("ci") else "")
                            + f"; limit {check.get('limit_text') or 'none'}",
                "harms": f"gate run {g['pk']} verdict on this check: {check['verdict']}",
                "mitigationStrategy": "A release needs a passing gate run (or a recorded override) and the approvals "
                                      "of the approval policy; see the audit dossier.",
            })
    parameters = {
        "approach": {"type": "supervised"},
        "task": "classification",
        "architectureFamily": mv.framework or "unknown",
        "modelArchitecture": (run.parameters.get("estimator") if run and isinstance(run.parameters, dict)
                              and run.parameters.get("estimator") else mv.get_artifact_format_display()),
        "datasets": [{"ref": d["subject"]} for d in ev.datasets],
        "inputs": [{"format": "tabular: " + ", ".join(mv.feature_names)}] if mv.feature_names else [],
        "outputs": [{"format": "class label and probability"}],
    }
    properties = [{"name": "custos:subject", "value": model_ref},
                  {"name": "custos:checkpoint", "value": str(ev.checkpoint.tree_size)}]
    if run is not None:
        for key, value in sorted((run.parameters or {}).items()):
            properties.append({"name": f"custos:parameter:{key}", "value": json.dumps(value, sort_keys=True)})
        for key, value in sorted((run.seeds or {}).items()):
            properties.append({"name": f"custos:seed:{key}", "value": json.dumps(value, sort_keys=True)})
    model_component = {
        "type": "machine-learning-model",
        "bom-ref": model_ref,
        "name": model.name,
        "version": mv.version,
        "description": model.intended_purpose,
        "hashes": [{"alg": "SHA-256", "content": mv.artifact_sha256}],
        "properties": properties,
        "modelCard": {
            "modelParameters": parameters,
            "quantitativeAnalysis": {"performanceMetrics": metrics},
            "considerations": {
                "useCases": [model.intended_purpose],
                "fairnessAssessments": fairness,
            },
        },
    }
    data_components = []
    for d in ev.datasets:
        component = {
            "type": "data",
            "bom-ref": d["subject"],
            "name": d["name"],
            "version": d["version"],
            "data": [{
                "type": "dataset",
                "name": f"{d['name']}@{d['version']}",
                "classification": "personal data" if d["personal_columns"] else "non-personal",
                "sensitiveData": sorted(set(d["personal_columns"]) | set(d["sensitive_columns"])),
                "description": (d["description"] or f"{d['role'] or 'used'} data")[:1000],
            }],
            "properties": [{"name": "custos:rows", "value": str(d["row_count"])},
                           {"name": "custos:role", "value": d["role"] or "input"}],
        }
        if d["sha256"]:
            component["hashes"] = [{"alg": "SHA-256", "content": d["sha256"]}]
        data_components.append(component)
    serial = uuid.uuid5(BOM_NAMESPACE, f"{model_ref}@{ev.checkpoint.tree_size}")
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "timestamp": iso(ev.checkpoint.created_at),
            "tools": {"components": [{"type": "application", "name": "Custos reports",
                                      "version": TEMPLATE_VERSION}]},
            "component": {"type": "machine-learning-model", "bom-ref": f"{model_ref}#bom", "name": model.name,
                          "version": mv.version},
        },
        "components": [model_component, *data_components],
        "dependencies": [{"ref": model_ref, "dependsOn": [d["subject"] for d in ev.datasets]},
                         *({"ref": d["subject"]} for d in ev.datasets)],
    }


def ml_bom_bytes(ev: VersionEvidence) -> bytes:
    return (json.dumps(ml_bom(ev), sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
