"""One gate evaluation: predict, compute performance, fairness and explainability figures,
judge them against a policy, and return a JSON-ready result that holds everything needed to
re-run it (library versions, seeds, sampled rows, digests)."""

import hashlib
import logging
import math
import platform
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

from audit.canonical import canonical_json

from . import policy as gate_policy
from .explain import explain

logger = logging.getLogger(__name__)
from .fairness import fairness_figures
from .performance import performance_figures

RESULT_FORMAT = "custos.gate-result/1"
PREDICT_CHUNK = 100_000
LIBRARIES = ("numpy", "pandas", "scikit-learn", "shap", "fairlearn", "xgboost", "lightgbm", "skops")


class GateInputError(ValueError):
    """The evaluation set does not fit the model or the request (a clear, user-facing reason)."""


def library_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def model_features(estimator) -> list[str] | None:
    names = getattr(estimator, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else None


NUMERIC_TYPE_PREFIXES = ("int", "uint", "float", "double", "decimal", "number")


def input_problems(*, features, columns, label_column, sensitive_columns, label_values=None,
                   positive_label=None, intersections=(), binned_columns=(), column_types=None) -> list[str]:
    """Every reason why an evaluation set with COLUMNS cannot be used; [] if none.

    Pure, so a submission can be refused with a 4xx before anything runs: FEATURES (the
    model's input names, None if unknown), the label column, the sensitive columns, the
    policy's INTERSECTIONS (lists of sensitive columns), the BINNED_COLUMNS it gives cut
    points for and, if known, the COLUMN_TYPES ({name: type}) and the label's distinct values."""
    problems = []
    columns = list(columns)
    for inter in intersections:
        unknown = [c for c in inter if c not in sensitive_columns]
        if unknown:
            problems.append(
                f"The intersection {' & '.join(inter)} names {', '.join(unknown)}, which is not among the sensitive "
                f"features checked ({', '.join(sensitive_columns) or 'none'})."
            )
    for column in binned_columns:
        kind = str((column_types or {}).get(column, "")).lower()
        if kind and not kind.startswith(NUMERIC_TYPE_PREFIXES):
            problems.append(f"The policy bins {column!r} with cut_points, but it holds {kind} values, not numbers.")
    if label_column not in columns:
        problems.append(f"The label column {label_column!r} is not in the evaluation data.")
    if features is not None:
        missing = [f for f in features if f not in columns]
        if missing:
            problems.append(f"The evaluation data lacks the model's input columns: {', '.join(missing)}.")
        if label_column in features:
            problems.append(f"The label column {label_column!r} is one of the model's inputs.")
    absent = [c for c in sensitive_columns if c not in columns]
    if absent:
        problems.append(f"Sensitive features not in the evaluation data: {', '.join(absent)}.")
    if label_values is not None and positive_label is not None:
        values = {str(v) for v in label_values}
        if str(positive_label) not in values:
            problems.append(f"The positive label {positive_label!r} does not occur in {label_column!r}.")
        if len(values) > 2:
            problems.append(
                f"The label column {label_column!r} has values other than two classes: {', '.join(sorted(values))}."
            )
    return problems


def _label_mask(series: pd.Series, positive_label):
    """Boolean mask of positive labels; labels compare as strings so '1' and 1 agree."""
    text = str(positive_label)
    values = series.dropna().unique()
    matches = [v for v in values if str(v) == text]
    if not matches:
        return np.zeros(len(series), dtype=bool)
    return (series == matches[0]).to_numpy(dtype=bool)  # no per-row strings: bounded memory


def model_classes(estimator) -> list:
    """The model's class labels; a bare binary booster (no ``classes_``) outputs classes 0 and 1."""
    classes = getattr(estimator, "classes_", None)
    return list(classes) if classes is not None else [0, 1]


def _positive_index(estimator, positive_label):
    classes = [str(c) for c in model_classes(estimator)]
    if str(positive_label) not in classes:
        raise GateInputError(
            f"The model's classes are {', '.join(classes) or '(unknown)'}; the positive label "
            f"{positive_label!r} is not one of them."
        )
    return classes.index(str(positive_label))


def predict(estimator, frame, positive_index, positive_label):
    """Predicted positives (booleans) and positive-class scores, in chunks so that memory
    stays bounded on large evaluation sets."""
    positives, scores = [], []
    has_proba = hasattr(estimator, "predict_proba")
    for start in range(0, len(frame), PREDICT_CHUNK):
        part = frame.iloc[start:start + PREDICT_CHUNK]
        if has_proba:
            proba = np.asarray(estimator.predict_proba(part))
            scores.append(proba[:, positive_index].astype(float))
            positives.append(np.argmax(proba, axis=1) == positive_index)
        else:
            positives.append(_label_mask(pd.Series(np.asarray(estimator.predict(part))), positive_label))
            if hasattr(estimator, "decision_function"):
                d = np.asarray(estimator.decision_function(part), dtype=float)
                scores.append(d if positive_index == 1 else -d)
    y_pred = np.concatenate(positives) if positives else np.zeros(0, dtype=bool)
    score = np.concatenate(scores) if scores else None
    return y_pred, score


def predictions_digest(y_pred, scores) -> str:
    """SHA-256 of the predictions: one byte per row (1 = positive), then the scores as
    little-endian float64 (if any)."""
    h = hashlib.sha256()
    h.update(np.asarray(y_pred, dtype=np.uint8).tobytes())
    if scores is not None:
        h.update(np.asarray(scores, dtype="<f8").tobytes())
    return h.hexdigest()


def _clean(value):
    """Make VALUE canonical-JSON-safe: NaN and infinities become None, numpy scalars Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def sensitive_specs(policy, declared_sensitive):
    """The sensitive features to check: the policy's, else the dataset's declared sensitive
    columns; numeric columns get the policy's ``cut_points`` where it names them."""
    fairness = policy["fairness"]  # a normalised policy
    specs = fairness["sensitive_features"] or [{"column": c} for c in declared_sensitive]
    cuts = fairness.get("cut_points", {})
    return [
        spec if spec.get("cut_points") or spec["column"] not in cuts else {**spec, "cut_points": cuts[spec["column"]]}
        for spec in specs
    ]


def evaluate(estimator, frame: pd.DataFrame, *, label_column, positive_label, policy, seed,
             declared_sensitive=(), previous=None, model_sha256=None, dataset_sha256=None) -> dict:
    """Evaluate ESTIMATOR on FRAME against POLICY and return the JSON-ready result.

    DECLARED_SENSITIVE are the sensitive columns declared on the dataset (used when the
    policy names none); PREVIOUS is the result of the last approved version of the same
    model (for no-regression and ranking stability). Bad input raises GateInputError; any
    failure while computing gives a result with verdict "error" and the reason.
    """
    policy = gate_policy.policy_parse(policy)
    specs = sensitive_specs(policy, declared_sensitive)
    features = model_features(estimator)
    label_values = frame[label_column].dropna().unique() if label_column in frame.columns else None
    problems = input_problems(
        features=features,
        columns=frame.columns,
        label_column=label_column,
        sensitive_columns=[s["column"] for s in specs],
        label_values=label_values,
        positive_label=positive_label,
        intersections=policy["fairness"]["intersections"],
    )
    for spec in specs:  # a value that is not a number would silently fall into no bin
        if spec.get("cut_points") and spec["column"] in frame.columns:
            column = frame[spec["column"]]
            if (pd.to_numeric(column, errors="coerce").isna() & column.notna()).any():
                problems.append(
                    f"The policy bins {spec['column']!r} with cut_points, but it holds values that are not numbers."
                )
    if label_column in frame.columns and frame[label_column].isna().any():
        problems.append(f"The label column {label_column!r} has missing values.")
    if len(frame) == 0:
        problems.append("The evaluation data has no rows.")
    if problems:
        raise GateInputError(" ".join(problems))
    positive_index = _positive_index(estimator, positive_label)
    if features is None:
        features = [c for c in frame.columns if c != label_column]
    x = frame[features]
    result = {
        "format": RESULT_FORMAT,
        "policy_digest": gate_policy.policy_digest(policy),
        "seed": seed,
        "libraries": library_versions(),
        "model_sha256": model_sha256,
        "dataset_sha256": dataset_sha256,
        "data": {
            "rows": len(frame),
            "label_column": label_column,
            "positive_label": str(positive_label),
            "model_features": features,
            "sensitive_features": specs,
        },
    }
    checks = []
    try:
        y_pred, scores = predict(estimator, x, positive_index, positive_label)
        y_true = _label_mask(frame[label_column], positive_label)
        result["predictions"] = {
            "digest": predictions_digest(y_pred, scores),
            "positive_rate": float(y_pred.mean()),
            "has_scores": scores is not None,
        }
        perf = performance_figures(y_true, y_pred, scores)
        result["performance"] = perf
        checks += gate_policy.judge_performance(perf, policy, (previous or {}).get("performance"))

        fairness = policy["fairness"]
        result["fairness"] = fairness_figures(
            frame, y_true, y_pred,
            features=specs,
            intersections=fairness["intersections"],
            resamples=fairness["bootstrap"]["resamples"],
            confidence=fairness["bootstrap"]["confidence"],
            seed=seed,
        )
        too_many = [f["name"] for f in result["fairness"]["features"] if len(f["groups"]) > fairness["max_groups"]]
        if too_many:
            raise GateInputError(
                f"Sensitive features with more than {fairness['max_groups']} groups (give cut_points "
                f"in the policy to bin numeric columns): {', '.join(too_many)}."
            )
        checks += gate_policy.judge_fairness(result["fairness"], policy)

        rules = policy["explainability"]
        if rules["enabled"]:
            previous_importance = ((previous or {}).get("explainability") or {}).get("importance")
            result["explainability"] = explain(
                estimator, x,
                positive_index=positive_index,
                background_rows=rules["background_rows"],
                explained_rows=rules["explained_rows"],
                seed=seed,
                time_budget_seconds=rules["time_budget_seconds"],
                previous_importance=previous_importance,
            )
            checks += gate_policy.judge_explainability(
                result["explainability"], policy, [s["column"] for s in specs], previous
            )
    except GateInputError:
        raise
    except Exception as exc:  # any failure is recorded as an error verdict, never a pass
        # The traceback goes to the operators' log only: a stored result is served by the API
        # and must not carry server paths or library internals.
        logger.exception("gate evaluation failed")
        checks.append(
            gate_policy.check("run", "evaluation", gate_policy.ERROR, f"{type(exc).__name__}: {exc}")
        )
    result["checks"] = checks
    result["verdict"] = gate_policy.combine(c["verdict"] for c in checks)
    result["reasons"] = [f"{c['area']}: {c['name']}: {c['reason']}" for c in checks if c["verdict"] != gate_policy.PASSED]
    result = _clean(result)
    canonical_json(result)  # refuse a result that could not be stored or ledgered
    return result


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
