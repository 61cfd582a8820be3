"""Explainability figures with shap: the explainer that fits the model, global mean |SHAP|
per raw input column, the additivity error, and ranking stability (nDCG).

A scikit-learn Pipeline is split into its preprocessing and its final estimator: the
explainer explains the final estimator on the preprocessed columns, and the attributions
of the columns one raw column became (a one-hot encoder's dummies, say) are summed back to
that raw column. Background and explained rows are sampled with a recorded seed; their row
positions in the evaluation set are returned.
"""

import time
import warnings

import numpy as np
import pandas as pd
import shap
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

TREE, LINEAR, PERMUTATION = "tree", "linear", "permutation"
PERMUTATION_BATCH = 10


def split_pipeline(estimator):
    """(preprocessing or None, final estimator)."""
    if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
        return estimator[:-1], estimator[-1]
    if isinstance(estimator, Pipeline):
        return None, estimator[-1]
    return None, estimator


def explainer_kind(final) -> str:
    """Which explainer fits the final estimator: tree, linear or permutation."""
    tree_types = [
        DecisionTreeClassifier,
        RandomForestClassifier,
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
    ]
    try:  # optional frameworks: a deployment may install neither
        import xgboost

        tree_types.append(xgboost.XGBClassifier)
    except ImportError:  # pragma: no cover - an optional framework
        pass
    try:  # optional framework
        import lightgbm

        tree_types.append(lightgbm.LGBMClassifier)
    except ImportError:  # pragma: no cover - an optional framework
        pass
    if isinstance(final, tuple(tree_types)) or _lightgbm_booster(final) is not None:
        return TREE
    if isinstance(final, (LinearClassifierMixin, LinearModel)):
        return LINEAR
    return PERMUTATION


def _lightgbm_booster(final):
    """The lightgbm Booster inside a registry wrapper of a LightGBM text model, if any."""
    booster = getattr(final, "booster", None)
    return booster if type(booster).__module__.startswith("lightgbm") else None


def _transformed_names(prep, final, raw_columns):
    if prep is not None:
        try:
            return [str(n) for n in prep.get_feature_names_out()]
        except (AttributeError, ValueError, TypeError):
            pass
    names = getattr(final, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else list(raw_columns)


def _one_to_raw(transformer, inputs, outputs):
    """Map the OUTPUTS (names) of one transformer to its INPUTS (raw column names)."""
    if len(inputs) == 1:
        return [inputs[0]] * len(outputs)
    if len(outputs) == len(inputs):
        return list(inputs)
    # A one-hot-like encoder names its outputs "<input>_<category>" in input order.
    mapping, i = [], 0
    for out in outputs:
        bare = out.split("__", 1)[1] if "__" in out else out
        while i < len(inputs) and not bare.startswith(f"{inputs[i]}_"):
            i += 1
        if i == len(inputs):
            return None
        mapping.append(inputs[i])
    return mapping


def raw_column_map(prep, names, raw_columns) -> list[str]:
    """For each preprocessed column in NAMES, the raw input column it came from.

    Columns that cannot be traced to a single raw column are attributed to their
    transformed name (and so show up as their own 'feature')."""
    if prep is None:
        return list(names)
    steps = [s for _, s in prep.steps] if isinstance(prep, Pipeline) else [prep]
    ct = next((s for s in steps if isinstance(s, ColumnTransformer)), None)
    if ct is None or len(steps) > 1 and steps.index(ct) != 0:
        mapping = _one_to_raw(prep, list(raw_columns), list(names))
        return mapping or list(names)
    out = list(names)
    slices = ct.output_indices_
    for tname, transformer, cols in ct.transformers_:
        sl = slices.get(tname)
        if sl is None or sl.stop == sl.start or transformer == "drop":
            continue
        if isinstance(cols, slice) or (len(cols) and not isinstance(cols[0], str)):
            cols = list(np.asarray(raw_columns)[cols])
        mapped = _one_to_raw(transformer, list(cols), names[sl])
        if mapped is not None:
            out[sl] = mapped
    return out


def _dense(matrix):
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    if isinstance(matrix, pd.DataFrame):
        matrix = matrix.to_numpy()
    return np.asarray(matrix, dtype=float)


def _as_model_input(final, matrix, names):
    if getattr(final, "feature_names_in_", None) is not None:
        return pd.DataFrame(matrix, columns=list(final.feature_names_in_))
    return matrix


def model_output(final, kind, matrix, names, positive_index) -> tuple[np.ndarray, str]:
    """The model output the explainer's attributions add up to, and what it is."""
    x = _as_model_input(final, matrix, names)
    if kind == TREE and isinstance(final, (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier)):
        return final.predict_proba(x)[:, positive_index], "probability"
    if kind == TREE and type(final).__module__.startswith("xgboost"):
        margin = final.predict(x, output_margin=True)
    elif kind == TREE and _lightgbm_booster(final) is not None:
        margin = _lightgbm_booster(final).predict(matrix, raw_score=True)
    elif kind == TREE and type(final).__module__.startswith("lightgbm"):
        margin = final.predict(x, raw_score=True)
    elif kind in (TREE, LINEAR):
        margin = final.decision_function(x)
    else:
        return final.predict_proba(x)[:, positive_index], "probability"
    margin = np.asarray(margin, dtype=float)
    if margin.ndim == 2:
        return margin[:, positive_index], "log_odds"
    return (margin if positive_index == 1 else -margin), "log_odds"


def _select_output(values, base, positive_index):
    values = np.asarray(values, dtype=float)
    base = np.asarray(base, dtype=float).reshape(-1)
    if isinstance(values, list) or values.ndim == 3:
        values = values[..., positive_index]
        base = base[positive_index] if base.size > 1 else base[0]
    else:
        base = base[positive_index] if base.size > 1 else base[0]
        if positive_index == 0:
            values, base = -values, -base
    return values, float(base)


def ndcg(current: dict, previous: dict) -> float | None:
    """Normalised discounted cumulative gain of CURRENT's feature ranking, with PREVIOUS's
    importances as relevance (SageMaker Clarify's feature-attribution drift measure)."""
    relevance = {k: float(v) for k, v in previous.items()}
    ideal = sorted(relevance.values(), reverse=True)
    ranking = sorted(current, key=lambda k: (-current[k], k))
    dcg = sum(relevance.get(f, 0.0) / np.log2(i + 2) for i, f in enumerate(ranking))
    idcg = sum(v / np.log2(i + 2) for i, v in enumerate(ideal))
    return float(dcg / idcg) if idcg > 0 else None


def sample_rows(n, k, rng) -> list[int]:
    return sorted(int(i) for i in rng.choice(n, size=min(k, n), replace=False))


def explain(estimator, frame: pd.DataFrame, *, positive_index, background_rows, explained_rows,
            seed, time_budget_seconds, previous_importance=None) -> dict:
    """Explain ESTIMATOR on FRAME (its raw input columns); return JSON-ready figures."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    background_idx = sample_rows(n, background_rows, rng)
    explained_idx = sample_rows(n, explained_rows, rng)
    prep, final = split_pipeline(estimator)
    kind = explainer_kind(final)
    raw_columns = list(frame.columns)

    def transform(idx):
        rows = frame.iloc[idx]
        return _dense(prep.transform(rows) if prep is not None else rows)

    background = transform(background_idx)
    explained = transform(explained_idx)
    names = _transformed_names(prep, final, raw_columns)
    if len(names) != background.shape[1]:
        names = [f"x{i}" for i in range(background.shape[1])]
    to_raw = raw_column_map(prep, names, raw_columns)
    started = time.monotonic()
    budget_exhausted = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # feature-name warnings of array inputs
        if kind == TREE:
            tree_model = _lightgbm_booster(final) or final
            explainer = shap.TreeExplainer(tree_model, data=background, feature_perturbation="interventional")
            values = explainer.shap_values(explained, check_additivity=False)
            values, base = _select_output(values, explainer.expected_value, positive_index)
            exact = True
        elif kind == LINEAR:
            explainer = shap.LinearExplainer(final, shap.maskers.Independent(background, max_samples=len(background)))
            values = explainer.shap_values(explained)
            values, base = _select_output(values, explainer.expected_value, positive_index)
            exact = True
        else:
            def predict(z):
                return final.predict_proba(_as_model_input(final, z, names))[:, positive_index]

            masker = shap.maskers.Independent(background, max_samples=len(background))
            explainer = shap.PermutationExplainer(predict, masker, seed=seed)
            chunks = []
            max_evals = max(500, 2 * explained.shape[1] + 1)
            for start in range(0, len(explained), PERMUTATION_BATCH):
                if time.monotonic() - started > time_budget_seconds:
                    budget_exhausted = True
                    break
                part = explainer(explained[start:start + PERMUTATION_BATCH], max_evals=max_evals, silent=True)
                chunks.append(part.values)
                base = float(np.asarray(part.base_values).reshape(-1)[0])
            values = np.vstack(chunks) if chunks else np.zeros((0, explained.shape[1]))
            explained_idx = explained_idx[: len(values)]
            explained = explained[: len(values)]
            exact = False
            if not chunks:
                base = float(np.mean(predict(background)))
    seconds = time.monotonic() - started
    additivity, output_space = None, "probability"
    if len(values):
        outputs, output_space = model_output(final, kind, explained, names, positive_index)
        additivity = float(np.max(np.abs(base + values.sum(axis=1) - outputs)))
    raw_order = list(dict.fromkeys(to_raw))
    raw_index = {c: i for i, c in enumerate(raw_order)}
    summing = np.zeros((len(to_raw), len(raw_order)))
    for j, c in enumerate(to_raw):
        summing[j, raw_index[c]] = 1.0
    raw_values = values @ summing  # per explained row, SHAP summed per raw column
    mean_abs = np.abs(raw_values).mean(axis=0) if len(values) else np.zeros(len(raw_order))
    importance = {c: float(mean_abs[raw_index[c]]) for c in raw_order}
    total = sum(importance.values())
    shares = {c: (v / total if total > 0 else 0.0) for c, v in importance.items()}
    ranking = sorted(importance, key=lambda c: (-importance[c], c))
    return {
        "explainer": kind,
        "shap_class": type(explainer).__name__,
        "model_output": output_space,
        "exact": exact,
        "base_value": base,
        "background_indices": background_idx,
        "explained_indices": explained_idx,
        "explained_count": len(explained_idx),
        "budget_exhausted": budget_exhausted,
        "seconds": round(seconds, 3),
        "transformed_columns": names,
        "raw_columns": raw_order,
        "importance": importance,
        "shares": shares,
        "ranking": ranking,
        "raw_values": raw_values.tolist(),
        "additivity_error": additivity,
        "ranking_stability": ndcg(importance, previous_importance) if previous_importance else None,
    }
