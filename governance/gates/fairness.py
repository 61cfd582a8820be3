"""Fairness figures with fairlearn: metrics by group and declared intersections, disparity
metrics, and seeded bootstrap confidence intervals.

The by-group table and the point values of the disparity metrics come from fairlearn's
``MetricFrame`` (so they equal fairlearn's own ``demographic_parity_difference`` etc.).

The bootstrap resamples rows with replacement. Every figure here depends on the rows only
through the counts of the (group, true label, prediction) cells, and the cell counts of n
rows drawn with replacement are exactly multinomial(n, observed cell frequencies). So each
resample draws those counts directly: the same distribution as resampling rows, but with
memory and time independent of the number of rows. The seed and the method are recorded.
"""

import itertools
import warnings

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

MISSING = "(missing)"
BOOTSTRAP_METHOD = "multinomial cell counts (equivalent to resampling rows with replacement)"

GROUP_METRICS = {
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "accuracy": accuracy_score,
}


def sensitive_values(frame: pd.DataFrame, spec: dict) -> pd.Series:
    """The group label (a string) of every row for one sensitive-feature SPEC of a policy."""
    column = frame[spec["column"]]
    cuts = spec.get("cut_points")
    if cuts:
        numeric = pd.to_numeric(column, errors="coerce")
        edges = [-np.inf, *cuts, np.inf]
        labels = [f"<{cuts[0]:g}"]
        labels += [f"{a:g}-<{b:g}" for a, b in zip(cuts, cuts[1:])]
        labels.append(f">={cuts[-1]:g}")
        binned = pd.cut(numeric, bins=edges, labels=labels, right=False)
        out = binned.astype(object).where(binned.notna(), MISSING)
    else:
        out = column.astype(object).where(column.notna(), MISSING)
    return out.map(str).rename(spec["column"])


def _confusion_cells(codes, n_groups, y_true, y_pred):
    """Counts of (group, y_true, y_pred) cells, shape (n_groups, 2, 2)."""
    flat = codes * 4 + y_true.astype(np.int64) * 2 + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=n_groups * 4).reshape(n_groups, 2, 2)


def _disparities(cells):
    """Disparity metrics from cell counts of shape (..., groups, 2, 2) (last axes: true, pred).

    Groups with no rows (or no positives / negatives, for the rates that need them) are
    left out of max and min, as fairlearn's aggregation leaves out undefined groups.
    """
    cells = cells.astype(float)
    tn, fp = cells[..., 0, 0], cells[..., 0, 1]
    fn, tp = cells[..., 1, 0], cells[..., 1, 1]
    n = tn + fp + fn + tp
    with np.errstate(invalid="ignore", divide="ignore"):
        sel = np.where(n > 0, (tp + fp) / n, np.nan)
        tpr = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        fpr = np.where(fp + tn > 0, fp / (fp + tn), np.nan)

    def spread(rates):
        with np.errstate(invalid="ignore"):
            hi, lo = np.nanmax(rates, axis=-1), np.nanmin(rates, axis=-1)
        return hi - lo, hi, lo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: undefined, kept as NaN
        sel_diff, sel_hi, sel_lo = spread(sel)
        tpr_diff, _, _ = spread(tpr)
        fpr_diff, _, _ = spread(fpr)
        with np.errstate(invalid="ignore", divide="ignore"):
            sel_ratio = np.where(sel_hi > 0, sel_lo / sel_hi, np.nan)
        return {
            "demographic_parity_difference": sel_diff,
            "demographic_parity_ratio": sel_ratio,
            "equalized_odds_difference": np.fmax(tpr_diff, fpr_diff),
            "equal_opportunity_difference": tpr_diff,
        }


def _num(value):
    value = float(value)
    return None if np.isnan(value) else value


def feature_figures(name, labels: pd.DataFrame, y_true, y_pred, *, resamples, confidence, rng) -> dict:
    """Figures for one sensitive feature or intersection; LABELS has one column per feature.

    fairlearn's MetricFrame computes them on the distinct (group, true label, prediction)
    cells with their row counts as sample weights: the same figures as on the rows (every
    metric here is a weighted mean of those cells), in time and memory independent of the
    number of rows."""
    if labels.shape[1] > 1:
        codes, uniques = pd.MultiIndex.from_frame(labels).factorize()
    else:
        codes, uniques = pd.factorize(labels.iloc[:, 0])
    n_groups = len(uniques)
    cells = _confusion_cells(codes, n_groups, y_true, y_pred)
    g_idx, t_idx, p_idx = np.nonzero(cells)
    weights = cells[g_idx, t_idx, p_idx]
    cell_labels = pd.DataFrame(list(uniques[g_idx]) if labels.shape[1] > 1 else {labels.columns[0]: uniques[g_idx]},
                               columns=list(labels.columns))
    frame = MetricFrame(
        metrics=GROUP_METRICS,
        y_true=t_idx.astype(bool),
        y_pred=p_idx.astype(bool),
        sensitive_features=cell_labels if labels.shape[1] > 1 else cell_labels.iloc[:, 0],
        sample_params={metric: {"sample_weight": weights} for metric in GROUP_METRICS},
    )
    by_group = frame.by_group
    counts = pd.Series(weights).groupby([cell_labels[c] for c in labels.columns]).sum()
    groups = []
    for key, row in by_group.iterrows():
        count = counts.get(key, 0)
        if pd.isna(row["selection_rate"]) or count == 0:
            continue  # an empty intersection: reported in "empty_groups"
        key = key if isinstance(key, tuple) else (key,)
        groups.append(
            {
                "group": " & ".join(str(k) for k in key),
                "values": dict(zip(labels.columns, (str(k) for k in key))),
                "count": int(count),
                "selection_rate": _num(row["selection_rate"]),
                "true_positive_rate": _num(row["true_positive_rate"]),
                "false_positive_rate": _num(row["false_positive_rate"]),
                "accuracy": _num(row["accuracy"]),
            }
        )
    diff, ratio = frame.difference(method="between_groups"), frame.ratio(method="between_groups")
    metrics = {
        "demographic_parity_difference": {"value": _num(diff["selection_rate"])},
        "demographic_parity_ratio": {"value": _num(ratio["selection_rate"])},
        "equalized_odds_difference": {
            "value": _num(max(diff["true_positive_rate"], diff["false_positive_rate"]))
        },
        "equal_opportunity_difference": {"value": _num(diff["true_positive_rate"])},
    }
    empty = []
    if labels.shape[1] > 1:
        present = {tuple(g["values"][c] for c in labels.columns) for g in groups}
        for combo in itertools.product(*(sorted(labels[c].unique()) for c in labels.columns)):
            if combo not in present:
                empty.append(" & ".join(combo))
    if resamples:
        n = int(cells.sum())
        draws = rng.multinomial(n, cells.ravel() / n, size=resamples).reshape(resamples, n_groups, 2, 2)
        boot = _disparities(draws)
        alpha = (1 - confidence) / 2
        for metric, values in boot.items():
            with np.errstate(invalid="ignore"):
                finite = values[~np.isnan(values)]
            if len(finite) < len(values):
                metrics[metric]["undefined_resamples"] = int(len(values) - len(finite))
            if len(finite):
                lo, hi = np.quantile(finite, [alpha, 1 - alpha])
                metrics[metric]["ci"] = [float(lo), float(hi)]
            else:
                metrics[metric]["ci"] = [None, None]
    return {
        "name": name,
        "columns": list(labels.columns),
        "groups": groups,
        "metrics": metrics,
        "empty_groups": empty,
    }


def fairness_figures(frame: pd.DataFrame, y_true, y_pred, *, features, intersections, resamples, confidence, seed) -> dict:
    """Figures for every sensitive feature spec in FEATURES and every intersection (a list of
    column names) in INTERSECTIONS. Y_TRUE and Y_PRED are boolean arrays (positive = True)."""
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    rng = np.random.default_rng(seed)
    labels = {spec["column"]: sensitive_values(frame, spec) for spec in features}
    out = []
    for spec in features:
        col = spec["column"]
        out.append(
            feature_figures(col, labels[col].to_frame(), y_true, y_pred,
                            resamples=resamples, confidence=confidence, rng=rng)
        )
    for inter in intersections:
        sub = pd.concat([labels[c] for c in inter], axis=1)
        out.append(
            feature_figures(" & ".join(inter), sub, y_true, y_pred,
                            resamples=resamples, confidence=confidence, rng=rng)
        )
    return {
        "features": out,
        "bootstrap": {"resamples": resamples, "confidence": confidence, "seed": seed, "method": BOOTSTRAP_METHOD},
    }
