"""One gate evaluation: predict, compute performance, fairness and explainability figures,
judge them against a policy, and return a JSON-ready result that holds everything needed to
re-run it (library versions, seeds, sampled rows, digests)."""

import hashlib
import logging
import math
import platform
import traceback
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

from audit.canonical import canonical_json

from ..rules.limits import quoted_list
from . import policy as gate_policy
from .explain import explain
from .fairness import fairness_figures, sensitive_values
from .inputs import GateInputError, input_problems, sensitive_specs
from .performance import performance_figures

logger = logging.getLogger(__name__)

RESULT_FORMAT = "custos.gate-result/1"
PREDICT_CHUNK = 100_000
LIBRARIES = ("numpy", "pandas", "scikit-learn", "shap", "fairlearn", "xgboost", "lightgbm", "skops")


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
            f"The model's classes are {quoted_list(classes) or '(unknown)'}; the positive label "
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


def _too_many_groups(frame, specs, max_groups) -> list[str]:
    """The sensitive features with more than MAX_GROUPS groups, counted before any figure is
    computed (a refusal must not wait for every figure of 2,000 groups)."""
    return [s["column"] for s in specs if s["column"] in frame.columns
            and sensitive_values(frame, s).nunique(dropna=False) > max_groups]


def _mistyped_columns(x: pd.DataFrame) -> list[str]:
    """The text columns of X whose values are mostly numbers, but not all: where a model that
    expects numbers fails (as scikit-learn does with "could not convert string to float")."""
    found = []
    for name in x.columns:
        column = x[name]
        if not (column.dtype == object or pd.api.types.is_string_dtype(column.dtype)):
            continue
        present = column.dropna()
        numeric = pd.to_numeric(present, errors="coerce").notna()
        if 0 < numeric.sum() < len(present) and numeric.mean() >= 0.5:
            found.append(str(name))
    return found


def _failure_reason(exc: Exception, x: pd.DataFrame) -> str:
    """Why a computation failed, in words that quote no value of the data.

    A library's message may quote a cell ("could not convert string to float: 'three'"), so it
    is kept out of the result, which the API serves, and out of the log."""
    mistyped = _mistyped_columns(x)
    if mistyped:
        return (f"the model expects numbers in {quoted_list(repr(c) for c in mistyped)}, but "
                f"{'it holds' if len(mistyped) == 1 else 'they hold'} values that are not numbers "
                f"({type(exc).__name__})")
    return f"the model or a library failed on this data ({type(exc).__name__}; the operators' log has where)"


def evaluate(estimator, frame: pd.DataFrame, *, label_column, positive_label, policy, seed,
             declared_sensitive=(), previous=None, model_sha256=None, dataset_sha256=None,
             subject_column="", personal_columns=()) -> dict:
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
        subject_column=subject_column,
        personal_columns=personal_columns,
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
    if not problems:
        too_many = _too_many_groups(frame, specs, policy["fairness"]["max_groups"])
        if too_many:
            problems.append(
                f"Sensitive features with more than {policy['fairness']['max_groups']} groups (give cut_points "
                f"in the policy to bin numeric columns): {quoted_list(too_many)}."
            )
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
        # Where it failed goes to the operators' log only (a stored result is served by the API
        # and must not carry server paths or library internals); neither says the exception's
        # message, which may quote a cell of the snapshot.
        logger.error("gate evaluation failed: %s\n%s", type(exc).__name__,
                     "".join(traceback.format_tb(exc.__traceback__)))
        checks.append(gate_policy.check("run", "evaluation", gate_policy.ERROR, _failure_reason(exc, x)))
    result["checks"] = checks
    result["verdict"] = gate_policy.combine(c["verdict"] for c in checks)
    result["reasons"] = [
        f"{c['area']}: {c['name']}: {c['reason']}"
        for c in checks
        if c["verdict"] not in (gate_policy.PASSED, gate_policy.NOT_APPLICABLE)
    ]
    result = _clean(result)
    canonical_json(result)  # refuse a result that could not be stored or ledgered
    return result
