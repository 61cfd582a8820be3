"""What is kept of a gate result: its ledger summary, and what differs when it is re-computed."""

import hashlib

from audit.canonical import canonical_json


def summary(result: dict) -> dict:
    """The small part of a result that goes into the ledger: verdicts, values and digests."""
    return {
        "format": result.get("format"),
        "verdict": result.get("verdict"),
        "policy_digest": result.get("policy_digest"),
        "model_sha256": result.get("model_sha256"),
        "dataset_sha256": result.get("dataset_sha256"),
        "predictions_digest": (result.get("predictions") or {}).get("digest"),
        "result_digest": hashlib.sha256(canonical_json(result)).hexdigest(),
        "seed": result.get("seed"),
        "checks": [
            {"area": c["area"], "name": c["name"], "verdict": c["verdict"], "value": c.get("value")}
            for c in result.get("checks", [])
        ],
    }


def redact_rows(result: dict, positions, *, reference: str) -> tuple[dict, dict]:
    """RESULT without the per-row figures of the rows at POSITIONS (0-based rows of its snapshot).

    Removes those positions from the explained rows with their per-row SHAP values, and from the
    background sample; every aggregate (importance, shares, ranking, performance, fairness,
    counts) stays as computed. Returns (new result, what was removed in counts); the new result
    records the redaction under ``redactions`` (the request REFERENCE, the counts, the digest of
    the result before). Nothing removed: RESULT itself and zero counts.
    """
    gone = set(int(p) for p in positions)
    ex = result.get("explainability") or {}
    explained = list(ex.get("explained_indices") or [])
    values = list(ex.get("raw_values") or [])
    background = list(ex.get("background_indices") or [])
    keep = [i for i, p in enumerate(explained) if p not in gone]
    removed = {"explained_rows": len(explained) - len(keep),
               "background_rows": sum(1 for p in background if p in gone)}
    removed["rows"] = len(gone & (set(explained) | set(background)))
    if not removed["rows"]:
        return result, removed
    new_ex = dict(ex, explained_indices=[explained[i] for i in keep],
                  background_indices=[p for p in background if p not in gone])
    # One row of values per explained row; values that cannot be aligned with their rows go whole.
    new_ex["raw_values"] = [values[i] for i in keep] if len(values) == len(explained) else []
    new = dict(result, explainability=new_ex)
    new["redactions"] = [*result.get("redactions", []), {
        "request": reference, **removed,
        "previous_result_digest": hashlib.sha256(canonical_json(result)).hexdigest(),
    }]
    return new, removed


def differences(original: dict, recomputed: dict, *, shap_tolerance=1e-6) -> list[str]:
    """What differs between a stored result and its re-computation; [] if it reproduces.

    Predictions, performance and fairness figures must be equal exactly; SHAP values within
    SHAP_TOLERANCE (exact explainers) — the permutation explainer is seeded, so equal too."""
    out = []
    for key in ("policy_digest", "seed", "verdict"):
        if original.get(key) != recomputed.get(key):
            out.append(f"{key}: {original.get(key)!r} != {recomputed.get(key)!r}")
    if (original.get("predictions") or {}).get("digest") != (recomputed.get("predictions") or {}).get("digest"):
        out.append("predictions digest differs")
    for area in ("performance", "fairness"):
        if original.get(area) != recomputed.get(area):
            out.extend(_diff_paths(original.get(area), recomputed.get(area), area))
    import numpy as np  # a re-verification runs on a worker; Django's start does without numpy

    a, b = original.get("explainability"), recomputed.get("explainability")
    if (a is None) != (b is None):
        out.append("explainability: present in only one result")
    elif a is not None:
        for key in ("explainer", "background_indices", "explained_indices", "raw_columns"):
            if a.get(key) != b.get(key):
                out.append(f"explainability.{key} differs")
        va, vb = np.asarray(a.get("raw_values") or []), np.asarray(b.get("raw_values") or [])
        if va.shape != vb.shape:
            out.append(f"explainability.raw_values: shape {va.shape} != {vb.shape}")
        elif va.size:
            worst = float(np.max(np.abs(va - vb)))
            if worst > shap_tolerance:
                out.append(f"explainability.raw_values: largest difference {worst:.3g} > {shap_tolerance:g}")
    checks_a = [(c["name"], c["verdict"]) for c in original.get("checks", [])]
    checks_b = [(c["name"], c["verdict"]) for c in recomputed.get("checks", [])]
    if checks_a != checks_b:
        out.append("check verdicts differ")
    return out


def _diff_paths(a, b, path):
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out.extend(_diff_paths(a.get(k), b.get(k), f"{path}.{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(_diff_paths(x, y, f"{path}[{i}]"))
        return out
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
