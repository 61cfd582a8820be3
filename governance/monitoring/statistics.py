"""The statistics of a closed window, from its aggregate and the reference profile alone.

Every figure is a dict with ``statistic``, ``column``, ``value``, ``limits``, ``n`` (the
window's count it rests on), ``verdict`` in {ok, warn, alert, inconclusive}, a ``reason``
and ``sources`` (keys of ``SOURCES``: where each default comes from and its caveats).
Floats that are undefined are None, so an evaluation is plain JSON for the ledger.

Definitions (n = the window's count, m = the reference's):

- **PSI** on the reference deciles (the outer bins open to +-inf, so out-of-range values
  count in the first or last decile): ``sum (w - r) ln(w / r)`` with proportions floored at
  ``PSI_EPSILON`` (1e-4, as Evidently does) so an empty bin is finite. Limits 0.1 / 0.25:
  an industry rule of thumb with no documented origin, blind to sample size. Two samples of
  one distribution give PSI ~ chi2(B - 1) (1/n + 1/m) (Yurdakul 2018), so the figure records
  n and that null's 95th percentile, and an ``ok`` needs a window large enough for the noise
  to stay below the warn limit; at large n prefer the effect sizes (Wasserstein, JS).
- **Jensen-Shannon distance**, base 2 (in [0, 1]): the square root of the JS divergence
  between the window's and the reference's proportions on the same decile bins (numeric) or
  on the categories plus one cell for all unseen ones (categorical). Null: 8 ln2 JS^2 ~
  chi2(B - 1) (1/n + 1/m) (second-order expansion of the divergence, as for PSI).
- **Normalised Wasserstein**: W1 between the reference and the window, computed from their
  counts on the reference's window bins and at their edges, divided by the reference's
  standard deviation (as Evidently's "Wasserstein distance (normed)"; the IQR is zero for
  many discrete features). Between two edges both distributions are taken as uniform (the
  value); since each CDF stays between its value at the left edge (point mass included) and
  its value just below the right edge, the exact W1 of the rows lies in ``bounds``:
  ``sum width * max(0, a_j - b_(j+1)-, b_j - a_(j+1)-)`` to ``sum width * max(a_(j+1)- - b_j,
  b_(j+1)- - a_j)``. Those bounds are tight where the values sit on the edges (a discrete
  feature: exact) and about ``sum width * (mass in the bin)`` for continuous ones. Values
  beyond the last geometric extension bin leave the upper bound open (None). Null: ``sqrt(1/n + 1/m) q95 / sd`` with q95 the
  95th percentile of the integral of |B(F(x))| (del Barrio, Giné & Matrán 1999), simulated
  once in the profile.
- **Chi-square** test of homogeneity (Pearson, no continuity correction) of the categories
  (plus unseen) between reference and window. Cochran's rule (expected >= 5 in at least 80%
  of cells, none < 1): the two rarest categories are merged until it holds; if it cannot
  hold with two cells left, inconclusive. Cramér's V is given as the effect size.
- **Integrity rates** (missing, type violations, out-of-range, unseen share) with Wilson
  intervals against the rate expected without drift: the reference's missing rate, 0, 2/(m+1)
  (a new draw falls outside the range of m exchangeable draws with probability 2/(m+1)),
  (singletons + 1)/(m + 1) (Good-Turing). Limits: expected + 0.01 (warn) / + 0.05 (alert).
- **Performance** when labels arrive (accuracy, TPR, FPR, precision) with Wilson intervals,
  against the gate's figures (or the reference's own cells when none are given): warn 0.05
  and alert 0.10 worse than the gate.
- **Fairness** per sensitive attribute (and declared intersections): selection rate, TPR,
  FPR per group with Wilson intervals; the demographic parity ratio (lowest / highest
  selection rate over groups with enough rows) with a percentile bootstrap interval drawn
  from the multinomial distribution of the (group, predicted) cell counts, seed recorded;
  judged against the four-fifths rule.

Verdicts, for a rate with interval [lo, hi] and limits on its bad side: ``alert`` when the
whole interval is past the alert limit, ``warn`` when the estimate is past the warn limit,
``ok`` when the whole interval is on the good side of the warn limit, else ``inconclusive``.
For a distance: ``alert`` at or past the alert limit and above the null's 95th percentile,
``warn`` at or past the warn limit, ``ok`` below it when the null's 95th percentile is below
it too, else ``inconclusive``. Too few rows (``min_rows``, ``min_labelled``, ``min_group``)
is ``inconclusive`` with the reason: never a false ``ok``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import scipy
from scipy import special
from scipy import stats as sps

from .aggregates import ReferenceProfile, WindowAggregate

from .vocabulary import EVALUATION_FORMAT, PSI_EPSILON, SOURCES, VERDICTS, Limits  # re-exported


def _f(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@lru_cache(maxsize=256)
def _z(confidence: float) -> float:
    return float(sps.norm.ppf(1 - (1 - confidence) / 2))


@lru_cache(maxsize=1024)
def _chi2_q95(dof: int) -> float:
    return float(special.chdtri(dof, 0.05))


def wilson_interval(k: int, n: int, confidence: float = 0.95):
    """The Wilson score interval (lo, hi) of K successes in N trials (None, None when N = 0)."""
    if n <= 0:
        return None, None
    z = _z(confidence)
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


# --- the distances -----------------------------------------------------------------------------

def _row_sums(terms: np.ndarray) -> np.ndarray:
    """Correctly rounded sums (math.fsum) of each row: the same figure whatever the number of
    windows evaluated together (numpy's reductions change their order with the shape)."""
    terms = np.atleast_2d(terms)
    return np.array([math.fsum(row) for row in terms.tolist()])


def _scalar_or_rows(values: np.ndarray, single: bool):
    return float(values[0]) if single else values


def psi(reference_counts, window_counts, epsilon: float = PSI_EPSILON):
    """PSI of two count vectors on the same bins, proportions floored at EPSILON. WINDOW_COUNTS
    may be a matrix (one window per row): then one PSI per row."""
    r = np.asarray(reference_counts, float)
    w = np.asarray(window_counts, float)
    single = w.ndim == 1
    w = np.atleast_2d(w)
    r = np.maximum(r / r.sum(), epsilon)
    w = np.maximum(w / w.sum(axis=-1, keepdims=True), epsilon)  # sums of integer counts: exact
    return _scalar_or_rows(_row_sums((w - r) * np.log(w / r)), single)


def js_distance(reference_counts, window_counts):
    """Jensen-Shannon distance, base 2, of two count vectors on the same bins (one per row of
    WINDOW_COUNTS when it is a matrix)."""
    p = np.asarray(reference_counts, float)
    q = np.asarray(window_counts, float)
    single = q.ndim == 1
    q = np.atleast_2d(q)
    p = p / p.sum()
    q = q / q.sum(axis=-1, keepdims=True)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log2(p / m), 0.0)
        kq = np.where(q > 0, q * np.log2(q / m), 0.0)
    out = np.sqrt(np.maximum(0.0, _row_sums(kp + kq) / 2))
    return _scalar_or_rows(out, single)


def wasserstein_binned(edges, reference_counts, reference_at_edges, window_counts, window_at_edges):
    """(value, lower, upper) of W1 between two distributions given by their counts on the bins
    ``(-inf, e0), [e0, e1), ..., [ek, inf)`` and at the edges; upper is None (NaN for a
    matrix) when either has values in an outer bin, whose extent is unknown (module
    docstring). The window arguments may be matrices, one window per row.

    On the open interval between two edges each CDF rises from its value at the left edge
    (point mass included) to its value just below the right edge; the value takes that rise
    as linear, the bounds take the worst and the best case."""
    edges = np.asarray(edges, float)
    r, w = np.asarray(reference_counts, float), np.asarray(window_counts, float)
    single = w.ndim == 1
    w = np.atleast_2d(w)
    w_at = np.atleast_2d(np.asarray(window_at_edges, float))
    nr, nw = r.sum(), w.sum(axis=1, keepdims=True)
    below_r, below_w = np.cumsum(r)[:-1] / nr, np.cumsum(w, axis=1)[:, :-1] / nw  # P(X < e_j)
    at_r = below_r + np.asarray(reference_at_edges, float) / nr                   # P(X <= e_j)
    at_w = below_w + w_at / nw
    a0, a1 = at_r[:-1], below_r[1:]
    b0, b1 = at_w[:, :-1], below_w[:, 1:]
    widths = np.diff(edges)
    d0, d1 = a0 - b0, a1 - b1
    same = d0 * d1 >= 0
    total = np.abs(d0) + np.abs(d1)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(total > 0, (d0 * d0 + d1 * d1) / (2 * total), 0.0)
    value = _row_sums(widths * np.where(same, total / 2, crossing))
    lower = _row_sums(widths * np.maximum(0.0, np.maximum(a0 - b1, b0 - a1)))
    upper = _row_sums(widths * np.maximum(a1 - b0, b1 - a0))
    open_ended = (w[:, 0] > 0) | (w[:, -1] > 0) | (r[0] > 0) | (r[-1] > 0)
    upper = np.where(open_ended, np.nan, upper)
    if single:
        return float(value[0]), float(lower[0]), (None if open_ended[0] else float(upper[0]))
    return value, lower, upper


def chi_square_homogeneity(reference_counts, window_counts, names):
    """Pearson's chi-square test of homogeneity on a 2 x K table, merging the two rarest
    categories until Cochran's rule holds. Returns a dict with statistic, dof, p_value,
    cramers_v, merged (lists of names merged together) or reason when it cannot be judged."""
    r = [int(x) for x in reference_counts]
    w = [int(x) for x in window_counts]
    columns = [([name], a, b) for name, a, b in zip(names, r, w) if a + b > 0]
    merged_any = False
    while True:
        if len(columns) < 2:
            return {"reason": "fewer than two categories have rows", "merged": []}
        table = np.array([[c[1] for c in columns], [c[2] for c in columns]], float)
        rows, cols = table.sum(axis=1), table.sum(axis=0)
        if rows.min() == 0:
            return {"reason": "one side has no rows", "merged": []}
        expected = np.outer(rows, cols) / table.sum()
        if (expected >= 5).mean() >= 0.8 and (expected >= 1).all():
            break
        if len(columns) == 2:
            return {"reason": "Cochran's rule fails even with the categories merged into two cells",
                    "merged": [c[0] for c in columns if len(c[0]) > 1]}
        columns.sort(key=lambda c: (c[1] + c[2], c[0]))
        (n1, a1, b1), (n2, a2, b2) = columns[0], columns[1]
        columns = [(n1 + n2, a1 + a2, b1 + b2)] + columns[2:]
        merged_any = True
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = len(columns) - 1
    return {
        "statistic": statistic,
        "dof": dof,
        "p_value": float(special.chdtrc(dof, statistic)),  # chi2.sf, without scipy.stats' overhead
        "cramers_v": math.sqrt(statistic / table.sum()),
        "merged": [sorted(c[0]) for c in columns if len(c[0]) > 1] if merged_any else [],
        "table": table.astype(int).tolist(),
        "cells": [sorted(c[0]) for c in columns],
    }


# --- verdicts ----------------------------------------------------------------------------------

def rate_verdict(point, lo, hi, warn, alert, *, higher_is_bad: bool):
    """The verdict of a rate with interval [LO, HI] against limits on its bad side."""
    if point is None:
        return "inconclusive", "undefined: no rows to compute it on"
    if higher_is_bad:
        if lo > alert:
            return "alert", f"the whole interval is above the alert limit {alert:.4g}"
        if point > warn:
            return "warn", f"the estimate is above the warn limit {warn:.4g}"
        if hi <= warn:
            return "ok", f"the whole interval is at or below the warn limit {warn:.4g}"
        return "inconclusive", f"the interval reaches above the warn limit {warn:.4g}: too few rows to rule it out"
    if hi < alert:
        return "alert", f"the whole interval is below the alert limit {alert:.4g}"
    if point < warn:
        return "warn", f"the estimate is below the warn limit {warn:.4g}"
    if lo >= warn:
        return "ok", f"the whole interval is at or above the warn limit {warn:.4g}"
    return "inconclusive", f"the interval reaches below the warn limit {warn:.4g}: too few rows to rule it out"


def distance_verdict(value, null_p95, warn, alert, *, upper=None):
    """The verdict of a distance against its limits and its null 95th percentile."""
    if value is None:
        return "inconclusive", "undefined on this window"
    if value >= alert and (null_p95 is None or value > null_p95):
        return "alert", f"at or above the alert limit {alert:.4g} and above sampling noise"
    if value >= warn:
        noise = " (within sampling noise at this size)" if null_p95 is not None and value <= null_p95 else ""
        return "warn", f"at or above the warn limit {warn:.4g}{noise}"
    if null_p95 is not None and null_p95 >= warn:
        return "inconclusive", (f"too few rows: sampling noise alone reaches {null_p95:.4g} "
                                f"(95th percentile) >= the warn limit {warn:.4g}")
    if upper is not None and upper >= warn:
        if math.isinf(upper):
            return "inconclusive", "values lie beyond the outer bins, so the exact distance has no upper bound"
        return "inconclusive", f"the binned bounds reach {upper:.4g} >= the warn limit {warn:.4g}"
    return "ok", f"below the warn limit {warn:.4g}"


def _figure(statistic, column, value, limits, n, verdict_reason, sources, **extra):
    verdict, reason = verdict_reason
    out = {"statistic": statistic, "column": column, "value": _f(value), "limits": limits, "n": int(n),
           "verdict": verdict, "reason": reason, "sources": list(sources)}
    out.update(extra)
    return out


def _too_few(n, minimum, what="rows"):
    return "inconclusive", f"the window has {n} {what}; at least {minimum} are needed"


# --- drift -------------------------------------------------------------------------------------

def _decile_counts(section, counts):
    """Counts on the decile bins (outer ones open) from counts on the window bins; COUNTS may
    be a matrix, one window per row."""
    c = np.cumsum(np.atleast_2d(counts), axis=1)
    cuts = np.asarray(section["decile_edges"][1:-1], dtype=np.int64)
    inner = c[:, cuts]
    full = np.concatenate([np.zeros((len(c), 1)), inner, c[:, -1:]], axis=1)
    return np.diff(full, axis=1)


def numeric_drift(reference: ReferenceProfile, windows, column: str, limits: Limits) -> list[list[dict]]:
    """PSI, JS distance and normalised Wasserstein of one numeric column (or the score), for
    each of WINDOWS (one list of figures per window; computed on all windows at once)."""
    section = reference.numeric_section(column)
    ref_counts = np.array(section["counts"])
    counts = np.array([w.numeric[column]["bins"] for w in windows])
    at_edges = np.array([w.numeric[column]["at_edges"] for w in windows])
    n = counts.sum(axis=1)
    m = section["n"]
    r_dec = _decile_counts(section, ref_counts)[0]
    w_dec = _decile_counts(section, counts)
    bins = int((r_dec > 0).sum())
    need = max(limits.min_rows, math.ceil(5 * m / r_dec[r_dec > 0].min()))
    safe = np.maximum(n, 1)
    scale = 1 / safe + 1 / m
    q = _chi2_q95(max(bins - 1, 1))
    psi_values = psi(r_dec, np.where(n[:, None] > 0, w_dec, 1))
    js_values = js_distance(r_dec, np.where(n[:, None] > 0, w_dec, 1))
    std = section["std"]
    if std > 0:
        w_values, w_lower, w_upper = wasserstein_binned(
            reference.edges[column], ref_counts, section["at_edges"],
            np.where(n[:, None] > 0, counts, 1), np.where(n[:, None] > 0, at_edges, 0))
        w_values, w_lower, w_upper = w_values / std, w_lower / std, w_upper / std
    psi_limits = {"warn": limits.psi_warn, "alert": limits.psi_alert}
    js_limits = {"warn": limits.js_warn, "alert": limits.js_alert}
    w_limits = {"warn": limits.wasserstein_warn, "alert": limits.wasserstein_alert}
    psi_sources = ["psi-rule-of-thumb", "psi-null", "psi-epsilon", "quantile-grid"]
    js_sources = ["jensen-shannon", "evidently-defaults", "psi-null"]
    w_sources = ["evidently-defaults", "wasserstein-null", "wasserstein-binned"]
    out = []
    for i in range(len(windows)):
        ni = int(n[i])
        if ni < need:
            few = _too_few(ni, need, "values")
            out.append([
                _figure("psi", column, None, psi_limits, ni, few, psi_sources + ["minimum-sizes"], n_reference=m),
                _figure("js_distance", column, None, js_limits, ni, few, js_sources + ["minimum-sizes"], n_reference=m),
                _figure("wasserstein_normalised", column, None, w_limits, ni, few, w_sources + ["minimum-sizes"],
                        n_reference=m),
            ])
            continue
        psi_null = q * scale[i]
        js_null = math.sqrt(psi_null / (8 * math.log(2)))
        figures = [
            _figure("psi", column, psi_values[i], psi_limits, ni,
                    distance_verdict(float(psi_values[i]), psi_null, limits.psi_warn, limits.psi_alert),
                    psi_sources, n_reference=m, bins=bins, null_p95=_f(psi_null)),
            _figure("js_distance", column, js_values[i], js_limits, ni,
                    distance_verdict(float(js_values[i]), js_null, limits.js_warn, limits.js_alert),
                    js_sources, n_reference=m, bins=bins, null_p95=_f(js_null)),
        ]
        if std <= 0:
            figures.append(_figure("wasserstein_normalised", column, None, w_limits, ni,
                                   ("inconclusive", "the reference has no spread (standard deviation 0)"),
                                   ["evidently-defaults"], n_reference=m))
        else:
            w_null = section["wasserstein_null_q95"] * math.sqrt(scale[i]) / std
            upper = _f(w_upper[i])  # None: values beyond the outer edges, the bound is open
            figures.append(_figure("wasserstein_normalised", column, w_values[i], w_limits, ni,
                                   distance_verdict(float(w_values[i]), w_null, limits.wasserstein_warn,
                                                    limits.wasserstein_alert,
                                                    upper=math.inf if upper is None else upper),
                                   w_sources, n_reference=m, bounds=[_f(w_lower[i]), upper], null_p95=_f(w_null),
                                   reference_std=_f(std)))
        out.append(figures)
    return out


def categorical_drift(reference: ReferenceProfile, window: WindowAggregate, column: str, limits: Limits) -> list[dict]:
    """PSI, JS distance and the chi-square test of one categorical column."""
    section = reference.doc["categorical"][column]
    acc = window.categorical[column]
    unseen = sum(acc["unseen"].values()) + acc["unseen_other"]
    r = np.array(section["counts"] + [0])
    w = np.concatenate([acc["counts"], [unseen]])
    n, m = int(w.sum()), section["n"]
    names = section["categories"] + ["(unseen)"]
    bins = len(section["counts"])
    psi_limits = {"warn": limits.psi_warn, "alert": limits.psi_alert}
    js_limits = {"warn": limits.js_warn, "alert": limits.js_alert}
    chi_limits = {"warn": limits.chi_square_warn, "alert": limits.chi_square_alert}
    out = []
    if n < limits.min_rows:
        few = _too_few(n, limits.min_rows, "values")
        out.append(_figure("psi", column, None, psi_limits, n, few, ["psi-rule-of-thumb", "psi-null"], n_reference=m))
        out.append(_figure("js_distance", column, None, js_limits, n, few, ["jensen-shannon", "evidently-defaults"], n_reference=m))
        out.append(_figure("chi_square", column, None, chi_limits, n, few, ["chi-square"], n_reference=m))
        return out
    scale = 1 / n + 1 / m
    q = _chi2_q95(max(bins - 1, 1))
    value = psi(r, w)
    out.append(_figure("psi", column, value, psi_limits, n,
                       distance_verdict(value, q * scale, limits.psi_warn, limits.psi_alert),
                       ["psi-rule-of-thumb", "psi-null", "psi-epsilon"], n_reference=m, bins=bins + 1,
                       null_p95=_f(q * scale)))
    js_null = math.sqrt(q * scale / (8 * math.log(2)))
    value = js_distance(r, w)
    out.append(_figure("js_distance", column, value, js_limits, n,
                       distance_verdict(value, js_null, limits.js_warn, limits.js_alert),
                       ["jensen-shannon", "evidently-defaults", "psi-null"], n_reference=m, bins=bins + 1,
                       null_p95=_f(js_null)))
    test = chi_square_homogeneity(r, w, names)
    if "p_value" not in test:
        out.append(_figure("chi_square", column, None, chi_limits, n, ("inconclusive", test["reason"]),
                           ["chi-square"], n_reference=m, merged=test["merged"]))
        return out
    p = test["p_value"]
    if p < limits.chi_square_alert:
        verdict = ("alert", f"p = {p:.3g} < {limits.chi_square_alert}")
    elif p < limits.chi_square_warn:
        verdict = ("warn", f"p = {p:.3g} < {limits.chi_square_warn}")
    else:
        verdict = ("ok", f"p = {p:.3g} >= {limits.chi_square_warn}")
    out.append(_figure("chi_square", column, p, chi_limits, n, verdict, ["chi-square"], n_reference=m,
                       chi_square=_f(test["statistic"]), dof=test["dof"], cramers_v=_f(test["cramers_v"]),
                       merged=test["merged"]))
    return out


# --- integrity ---------------------------------------------------------------------------------

def _rate(statistic, column, k, n, expected, limits: Limits, sources, minimum=None):
    warn, alert = expected + limits.integrity_warn, expected + limits.integrity_alert
    lims = {"warn": _f(warn), "alert": _f(alert)}
    minimum = limits.min_rows if minimum is None else minimum
    if n < minimum:
        return _figure(statistic, column, None, lims, n, _too_few(n, minimum), sources + ["minimum-sizes"],
                       count=int(k), expected=_f(expected))
    lo, hi = wilson_interval(k, n, limits.confidence)
    point = k / n
    return _figure(statistic, column, point, lims, n,
                   rate_verdict(point, lo, hi, warn, alert, higher_is_bad=True),
                   sources + ["wilson", "integrity-margins"], count=int(k), expected=_f(expected),
                   interval=[_f(lo), _f(hi)])


def integrity(reference: ReferenceProfile, window: WindowAggregate, limits: Limits) -> list[dict]:
    """Missing rate, type violations, range violations and unseen share of every column."""
    out = []
    rows = window.rows
    for name in reference.numeric_columns():
        section = reference.numeric_section(name)
        acc = window.numeric[name]
        m = reference.rows
        out.append(_rate("missing_rate", name, acc["missing"], rows, section["missing"] / m, limits, []))
        out.append(_rate("type_violations", name, acc["type_violations"], rows, 0.0, limits, []))
        start, stop = section["grid_edges"]
        outside = int(acc["bins"][: start + 1].sum() + acc["bins"][stop + 1:].sum())
        values = int(acc["bins"].sum())
        out.append(_rate("range_violations", name, outside, values, 2 / (section["n"] + 1), limits, ["range-expected"]))
    for name, section in reference.doc["categorical"].items():
        acc = window.categorical[name]
        out.append(_rate("missing_rate", name, acc["missing"], rows, section["missing"] / reference.rows, limits, []))
        out.append(_rate("type_violations", name, acc["type_violations"], rows, 0.0, limits, []))
        unseen = sum(acc["unseen"].values()) + acc["unseen_other"]
        values = int(acc["counts"].sum()) + unseen
        expected = (section["singletons"] + 1) / (section["n"] + 1)
        figure = _rate("unseen_share", name, unseen, values, expected, limits, ["unseen-expected"])
        figure["unseen_named"] = {k: int(v) for k, v in sorted(acc["unseen"].items())}
        figure["unseen_unnamed"] = int(acc["unseen_other"])
        out.append(figure)
    return out


# --- performance -------------------------------------------------------------------------------

PERFORMANCE = {
    # name: (numerator cells, denominator cells, higher is better); cells (predicted, label state)
    "accuracy": ([(1, 2), (0, 1)], [(1, 2), (0, 1), (1, 1), (0, 2)], True),
    "true_positive_rate": ([(1, 2)], [(1, 2), (0, 2)], True),
    "false_positive_rate": ([(1, 1)], [(1, 1), (0, 1)], False),
    "precision": ([(1, 2)], [(1, 2), (1, 1)], True),
}


def _sum_cells(cells, which):
    return int(sum(cells[..., p, s].sum() for p, s in which))


def performance(reference: ReferenceProfile, window: WindowAggregate, limits: Limits, gate: dict | None = None) -> list[dict]:
    """Accuracy, TPR, FPR and precision of the labelled rows against the gate's figures
    (GATE: name -> value; the reference's own cells for the figures it lacks)."""
    ref_cells = np.array(reference.doc["groups"]["counts"])
    labelled = int(window.cells[:, :, 1:].sum())
    out = []
    for name, (num, den, higher_better) in PERFORMANCE.items():
        k, n = _sum_cells(window.cells, num), _sum_cells(window.cells, den)
        if gate and gate.get(name) is not None:
            baseline, origin = float(gate[name]), "gate"
        else:
            rn = _sum_cells(ref_cells, den)
            baseline, origin = (_sum_cells(ref_cells, num) / rn if rn else None), "reference"
        if baseline is None:
            out.append(_figure(name, None, None, {}, n, ("inconclusive", "no baseline figure"), ["performance-tolerance"]))
            continue
        if higher_better:
            warn, alert = baseline - limits.performance_warn, baseline - limits.performance_alert
        else:
            warn, alert = baseline + limits.performance_warn, baseline + limits.performance_alert
        lims = {"warn": _f(warn), "alert": _f(alert), "baseline": _f(baseline), "baseline_from": origin}
        if n < limits.min_labelled:
            out.append(_figure(name, None, None, lims, n, _too_few(n, limits.min_labelled, "labelled rows for it"),
                               ["performance-tolerance", "minimum-sizes"], labelled=labelled))
            continue
        lo, hi = wilson_interval(k, n, limits.confidence)
        out.append(_figure(name, None, k / n, lims, n,
                           rate_verdict(k / n, lo, hi, warn, alert, higher_is_bad=not higher_better),
                           ["performance-tolerance", "wilson"], interval=[_f(lo), _f(hi)], labelled=labelled,
                           label_coverage=_f(labelled / window.rows) if window.rows else None))
    return out


# --- fairness ----------------------------------------------------------------------------------

def _marginal(reference: ReferenceProfile, cells: np.ndarray, attributes: tuple[int, ...]):
    shaped = cells.reshape(reference.cell_shape + (2, 3))
    others = tuple(i for i in range(len(reference.cell_shape)) if i not in attributes)
    summed = shaped.sum(axis=others) if others else shaped
    labels = [reference.group_labels[i] for i in attributes]
    return summed.reshape(-1, 2, 3), [" & ".join(c) for c in _product(labels)], _product(labels)


def _product(lists):
    return [list(c) for c in itertools.product(*lists)]


def _rate_entry(k, n, confidence):
    if n == 0:
        return {"value": None, "interval": [None, None], "n": 0}
    lo, hi = wilson_interval(k, n, confidence)
    return {"value": _f(k / n), "interval": [_f(lo), _f(hi)], "n": int(n)}


def fairness(reference: ReferenceProfile, window: WindowAggregate, limits: Limits,
             intersections: tuple[tuple[str, ...], ...] = (), rng=None) -> list[dict]:
    """Per-group rates and the demographic parity ratio of every attribute and intersection."""
    columns = [a["column"] for a in reference.doc["groups"]["attributes"]]
    rng = rng if rng is not None else np.random.default_rng(limits.seed)
    plans = [((i,), columns[i]) for i in range(len(columns))]
    for inter in intersections:
        plans.append((tuple(columns.index(c) for c in inter), " & ".join(inter)))
    out = []
    for attrs, name in plans:
        cells, names, parts = _marginal(reference, window.cells, attrs)
        groups, eligible, small = [], [], []
        for g, (label, part) in enumerate(zip(names, parts)):
            c = cells[g]
            n = int(c.sum())
            if n == 0:
                continue
            real = not any(p in ("(missing)", "(unseen)") for p in part)
            entry = {
                "group": label,
                "n": n,
                "selection_rate": _rate_entry(int(c[1].sum()), n, limits.confidence),
                "true_positive_rate": _rate_entry(int(c[1, 2]), int(c[1, 2] + c[0, 2]), limits.confidence),
                "false_positive_rate": _rate_entry(int(c[1, 1]), int(c[1, 1] + c[0, 1]), limits.confidence),
                "sufficient": n >= limits.min_group,
                "judged": real,
            }
            groups.append(entry)
            if real:
                (eligible if n >= limits.min_group else small).append(g)
        lims = {"warn": limits.parity_ratio, "alert": limits.parity_ratio}
        sources = ["four-fifths", "bootstrap", "wilson", "minimum-sizes"]
        total = window.rows
        if total < limits.min_rows:
            out.append(_figure("demographic_parity_ratio", name, None, lims, total, _too_few(total, limits.min_rows),
                               sources, groups=groups))
            continue
        if len(eligible) < 2:
            out.append(_figure("demographic_parity_ratio", name, None, lims, total,
                               ("inconclusive", f"fewer than two groups have at least {limits.min_group} rows"),
                               sources, groups=groups, too_small=[names[g] for g in small]))
            continue
        sel_cells = cells[eligible].sum(axis=2)  # (groups, predicted)
        n_el = sel_cells.sum(axis=1)
        rates = sel_cells[:, 1] / n_el
        value = rates.min() / rates.max() if rates.max() > 0 else None
        interval = [None, None]
        undefined = 0
        if limits.resamples:
            flat = sel_cells.ravel()
            draws = rng.multinomial(int(flat.sum()), flat / flat.sum(), size=limits.resamples).reshape(
                limits.resamples, len(eligible), 2)
            sizes = draws.sum(axis=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                r = np.where(sizes > 0, draws[:, :, 1] / sizes, np.nan)
                hi_r, lo_r = np.nanmax(r, axis=1), np.nanmin(r, axis=1)
                ratios = np.where(hi_r > 0, lo_r / hi_r, np.nan)
            finite = ratios[np.isfinite(ratios)]
            undefined = int(len(ratios) - len(finite))
            if len(finite):
                alpha = (1 - limits.confidence) / 2
                interval = [float(x) for x in np.quantile(finite, [alpha, 1 - alpha])]
        if value is None or interval[0] is None:
            verdict = ("inconclusive", "no group has a predicted positive")
        else:
            verdict = rate_verdict(value, interval[0], interval[1], limits.parity_ratio, limits.parity_ratio,
                                   higher_is_bad=False)
            if verdict[0] == "ok" and small:
                verdict = ("inconclusive", f"groups with fewer than {limits.min_group} rows cannot be judged: "
                                           + ", ".join(names[g] for g in small))
        out.append(_figure("demographic_parity_ratio", name, value, lims, total, verdict, sources,
                           interval=[_f(x) for x in interval], groups=groups, too_small=[names[g] for g in small],
                           bootstrap={"resamples": limits.resamples, "seed": limits.seed, "undefined_resamples": undefined,
                                      "confidence": limits.confidence}))
    return out


# --- one window --------------------------------------------------------------------------------

def window_evaluate(window: WindowAggregate, reference: ReferenceProfile, *, limits: Limits = Limits(),
                    gate: dict | None = None, intersections: tuple[tuple[str, ...], ...] = (),
                    window_digest: str | None = None) -> dict:
    """Every statistic of one closed WINDOW against REFERENCE, as one JSON document: the
    figures, the worst verdict, the counts of verdicts, the limits, the sources cited.
    WINDOW_DIGEST (``window.digest()``, which the store computes once) binds the document to
    the exact aggregate it was computed from."""
    return windows_evaluate([window], reference, limits=limits, gate=gate, intersections=intersections,
                            window_digests=[window_digest])[0]


def windows_evaluate(windows, reference: ReferenceProfile, *, limits: Limits = Limits(), gate: dict | None = None,
                     intersections: tuple[tuple[str, ...], ...] = (), window_digests=None) -> list[dict]:
    """``window_evaluate`` for many windows of one reference at once (the distances of each
    column are computed for all windows together): one document per window, in order."""
    windows = list(windows)
    for window in windows:
        if window.reference.digest != reference.digest:
            raise ValueError("a window was aggregated on another reference profile")
    digests = list(window_digests) if window_digests is not None else [None] * len(windows)
    per_window = [[] for _ in windows]
    for name in reference.numeric_columns():
        role = "score" if name == reference.spec.score else "feature"
        for figures, target in zip(numeric_drift(reference, windows, name, limits), per_window):
            for figure in figures:
                figure["role"] = role
            target.extend(figures)
    limits_json = asdict(limits)
    libraries = {"numpy": np.__version__, "scipy": scipy.__version__}
    docs = []
    for window, figures, digest in zip(windows, per_window, digests):
        for name in reference.spec.categorical:
            figures.extend(categorical_drift(reference, window, name, limits))
        figures.extend(integrity(reference, window, limits))
        figures.extend(performance(reference, window, limits, gate))
        figures.extend(fairness(reference, window, limits, intersections))
        counts = {v: 0 for v in VERDICTS}
        for f in figures:
            counts[f["verdict"]] += 1
        worst = max((f["verdict"] for f in figures), key=VERDICTS.index, default="inconclusive")
        used = sorted({s for f in figures for s in f["sources"]})
        docs.append({
            "format": EVALUATION_FORMAT,
            "reference": reference.digest,
            "window": {"start": window.start, "end": window.end, "rows": window.rows, "digest": digest},
            "verdict": worst,
            "verdicts": counts,
            "statistics": figures,
            "limits": limits_json,
            "sources": {k: SOURCES[k] for k in used},
            "libraries": libraries,
        })
    return docs


def window_quantiles(reference: ReferenceProfile, window: WindowAggregate, column: str, probabilities) -> list[dict]:
    """Quantiles of a numeric column (e.g. the score) in WINDOW, read from its bins: an
    estimate (uniform within the bin) and the bin's edges, between which the exact quantile
    lies (None for an outer bin)."""
    edges = reference.edges[column]
    counts = window.numeric[column]["bins"]
    total = counts.sum()
    out = []
    cum = np.cumsum(counts)
    for p in probabilities:
        if total == 0:
            out.append({"probability": float(p), "estimate": None, "bounds": [None, None]})
            continue
        target = p * total
        k = int(np.searchsorted(cum, target, side="left"))
        k = min(k, len(counts) - 1)
        lo = edges[k - 1] if k >= 1 else None
        hi = edges[k] if k < len(edges) else None
        if lo is None or hi is None:
            estimate = hi if lo is None else lo
        else:
            before = cum[k - 1] if k else 0
            share = (target - before) / counts[k] if counts[k] else 0.0
            estimate = lo + share * (hi - lo)
        out.append({"probability": float(p), "estimate": _f(estimate), "bounds": [_f(lo), _f(hi)]})
    return out


__all__ = [
    "Limits", "SOURCES", "VERDICTS", "PSI_EPSILON", "window_evaluate", "windows_evaluate", "wilson_interval", "psi", "js_distance",
    "wasserstein_binned", "chi_square_homogeneity", "numeric_drift", "categorical_drift", "integrity",
    "performance", "fairness", "window_quantiles", "rate_verdict", "distance_verdict",
]
