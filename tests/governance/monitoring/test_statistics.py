"""Window statistics against scipy/numpy (and fairlearn, sklearn) computed directly on the same
rows; the binned Wasserstein's bounds; verdicts that are never a false ok."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_ratio
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import binomtest, chi2, chi2_contingency, wasserstein_distance
from sklearn.metrics import accuracy_score, precision_score, recall_score

from audit.canonical import canonical_json
from governance.monitoring.aggregates import ProfileSpec, ReferenceProfile
from governance.monitoring.ingest import labels_apply, prediction_key
from governance.monitoring.statistics import (
    PSI_EPSILON,
    distance_verdict,
    rate_verdict,
    SOURCES,
    Limits,
    chi_square_homogeneity,
    js_distance,
    psi,
    wasserstein_binned,
    wilson_interval,
    window_evaluate,
    window_quantiles,
    windows_evaluate,
)

from .conftest import KEY, NUMERIC, window_of_rows


def _figure(doc, statistic, column=None):
    (found,) = [f for f in doc["statistics"] if f["statistic"] == statistic and f["column"] == column]
    return found


@pytest.fixture(scope="module")
def shifted(production_frame, production_weeks):
    """Weeks 2 to 5 (credit_amount x 1.3) as one window of 4,000 rows."""
    return production_frame[production_weeks >= 2].reset_index(drop=True)


@pytest.fixture(scope="module")
def shifted_doc(reference, shifted):
    return window_evaluate(window_of_rows(reference, shifted), reference)


def _deciles(reference, column):
    sec = reference.numeric_section(column)
    edges = np.array(sec["edges"])[sec["decile_edges"]]
    return np.concatenate([[-np.inf], edges[1:-1], [np.inf]])  # outer bins open


# --- drift against the bare computations -------------------------------------------------------

@pytest.mark.parametrize("column", NUMERIC + ("score",))
def test_psi_equals_numpy_on_the_reference_deciles(reference, reference_frame, shifted, shifted_doc, column):
    bins = _deciles(reference, column)
    r = np.histogram(reference_frame[column], bins=bins)[0] / len(reference_frame)
    w = np.histogram(shifted[column], bins=bins)[0] / len(shifted)
    r, w = np.maximum(r, PSI_EPSILON), np.maximum(w, PSI_EPSILON)
    figure = _figure(shifted_doc, "psi", column)
    assert figure["value"] == pytest.approx(np.sum((w - r) * np.log(w / r)), rel=1e-12, abs=1e-15)
    assert figure["n"] == len(shifted) and figure["n_reference"] == 1000
    k = figure["bins"]
    assert figure["null_p95"] == pytest.approx(chi2.ppf(0.95, k - 1) * (1 / len(shifted) + 1 / 1000))


@pytest.mark.parametrize("column", NUMERIC + ("score",))
def test_js_distance_equals_scipy(reference, reference_frame, shifted, shifted_doc, column):
    bins = _deciles(reference, column)
    r = np.histogram(reference_frame[column], bins=bins)[0]
    w = np.histogram(shifted[column], bins=bins)[0]
    assert _figure(shifted_doc, "js_distance", column)["value"] == pytest.approx(jensenshannon(r, w, base=2), rel=1e-9)


@pytest.mark.parametrize("column", ["purpose", "housing", "job", "sex"])
def test_categorical_js_and_psi_equal_scipy_and_numpy(reference, reference_frame, shifted, shifted_doc, column):
    categories = reference.doc["categorical"][column]["categories"]
    r = reference_frame[column].astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
    w = shifted[column].astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
    r, w = np.append(r, 0), np.append(w, len(shifted) - w.sum())  # the unseen cell
    assert _figure(shifted_doc, "js_distance", column)["value"] == pytest.approx(jensenshannon(r, w, base=2), rel=1e-9)
    rp, wp = np.maximum(r / r.sum(), PSI_EPSILON), np.maximum(w / w.sum(), PSI_EPSILON)
    assert _figure(shifted_doc, "psi", column)["value"] == pytest.approx(np.sum((wp - rp) * np.log(wp / rp)), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("column", NUMERIC + ("score",))
def test_wasserstein_bounds_hold_the_exact_distance_of_the_rows(reference, reference_frame, shifted, shifted_doc, column):
    figure = _figure(shifted_doc, "wasserstein_normalised", column)
    std = reference_frame[column].std(ddof=0)
    exact = wasserstein_distance(reference_frame[column], shifted[column]) / std
    lower, upper = figure["bounds"]
    assert lower - 1e-12 <= exact <= upper + 1e-12
    assert lower <= figure["value"] <= upper
    # the bound on the error of the binned value, as the module docstring states it
    assert abs(figure["value"] - exact) <= upper - lower + 1e-12


def test_credit_amount_shift_is_an_alert_and_the_rest_is_not(shifted_doc):
    amount = _figure(shifted_doc, "wasserstein_normalised", "credit_amount")
    assert amount["verdict"] == "alert" and amount["value"] > 0.2 and amount["value"] > amount["null_p95"]
    assert _figure(shifted_doc, "psi", "credit_amount")["verdict"] in ("warn", "alert")
    for column in ("duration", "age", "score"):
        assert _figure(shifted_doc, "psi", column)["verdict"] == "ok"
        assert _figure(shifted_doc, "js_distance", column)["verdict"] == "ok"
    for column in ("purpose", "housing", "sex"):
        assert _figure(shifted_doc, "chi_square", column)["verdict"] in ("ok", "warn")


@hsettings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["normal", "lognormal", "integers", "mixed"]),
       st.floats(0.5, 1.5), st.floats(-1, 1), st.integers(20, 3000))
def test_binned_wasserstein_bounds_hold_on_any_sample(seed, kind, scale, shift, n):
    rng = np.random.default_rng(seed)

    def draw(size, s=1.0, d=0.0):
        if kind == "normal":
            return rng.normal(d, s, size)
        if kind == "lognormal":
            return rng.lognormal(d, s, size)
        if kind == "integers":
            return rng.integers(0, 12, size).astype(float) * s + round(d * 3)
        return np.where(rng.random(size) < 0.3, 0.0, rng.exponential(s, size) + d)

    ref, win = draw(2000), draw(n, scale, shift)
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": ref, "p": 1, "y": 1}),
                                          ProfileSpec(numeric=("x",), prediction="p", label="y"))
    window = window_of_rows(profile, pd.DataFrame({"x": win, "p": 1}))
    sec = profile.numeric_section("x")
    value, lower, upper = wasserstein_binned(profile.edges["x"], sec["counts"], sec["at_edges"],
                                             window.numeric["x"]["bins"], window.numeric["x"]["at_edges"])
    exact = wasserstein_distance(ref, win)
    tolerance = 1e-9 * (1 + exact)
    assert lower - tolerance <= exact
    assert upper is None or exact <= upper + tolerance
    assert lower - tolerance <= value and (upper is None or value <= upper + tolerance)
    if kind == "integers" and upper is not None and np.isin(win, ref).all() and len(np.unique(ref)) == 12:
        # every value of a discrete feature with few values sits on an edge: exact
        assert value == pytest.approx(exact, rel=1e-9, abs=1e-12) and upper - lower < 1e-9


def test_a_value_beyond_the_outer_bins_leaves_the_bound_open_and_is_never_ok(reference, reference_frame):
    """One value beyond the last extension edge (2**39 steps out) already forces a lower
    bound far past the alert limit: the verdict is an alert although the upper bound is open."""
    frame = reference_frame.astype({"credit_amount": float})
    frame.loc[0, "credit_amount"] = 1e30  # beyond 2**40 extension steps above the maximum
    doc = window_evaluate(window_of_rows(reference, frame), reference)
    figure = _figure(doc, "wasserstein_normalised", "credit_amount")
    assert figure["bounds"][1] is None and figure["verdict"] == "alert"
    assert figure["bounds"][0] > figure["limits"]["alert"]
    assert _figure(doc, "range_violations", "credit_amount")["count"] == 1


def test_chi_square_equals_scipy_without_merging(reference, reference_frame, shifted, shifted_doc):
    categories = reference.doc["categorical"]["housing"]["categories"]
    table = np.array([reference_frame["housing"].value_counts().reindex(categories).to_numpy(),
                      shifted["housing"].value_counts().reindex(categories).to_numpy()])
    statistic, p, dof, _ = chi2_contingency(table, correction=False)
    figure = _figure(shifted_doc, "chi_square", "housing")
    assert figure["merged"] == [] and figure["dof"] == dof
    assert figure["value"] == pytest.approx(p, rel=1e-9) and figure["chi_square"] == pytest.approx(statistic, rel=1e-12)
    assert figure["cramers_v"] == pytest.approx(math.sqrt(statistic / table.sum()), rel=1e-12)


def test_chi_square_merges_rare_categories_until_cochran_holds(reference, reference_frame, shifted):
    small = shifted.head(60)
    doc = window_evaluate(window_of_rows(reference, small), reference, limits=Limits(min_rows=20))
    figure = _figure(doc, "chi_square", "purpose")
    assert figure["merged"], "the rare purposes are merged in a window of 60 rows"
    categories = reference.doc["categorical"]["purpose"]["categories"]
    group = {c: c for c in categories}
    for merged in figure["merged"]:
        for c in merged:
            group[c] = "+".join(merged)
    r = reference_frame["purpose"].map(group).value_counts()
    w = small["purpose"].map(group).value_counts()
    table = pd.concat([r, w], axis=1).fillna(0).to_numpy().T
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    assert (expected >= 5).mean() >= 0.8 and (expected >= 1).all()  # Cochran's rule holds after merging
    statistic, p, dof, _ = chi2_contingency(table, correction=False)
    assert figure["value"] == pytest.approx(p, rel=1e-9) and figure["dof"] == dof


def test_chi_square_is_inconclusive_when_cochran_cannot_hold():
    result = chi_square_homogeneity([500, 500], [1, 0], ["a", "b"])
    assert "p_value" not in result and "Cochran" in result["reason"]


# --- the formulas ------------------------------------------------------------------------------

@hsettings(max_examples=200, deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.sampled_from([0.9, 0.95, 0.99]))
def test_wilson_equals_scipy(kn, confidence):
    k, n = kn
    lo, hi = wilson_interval(k, n, confidence)
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


counts = st.lists(st.integers(0, 10_000), min_size=2, max_size=30)


@hsettings(max_examples=200, deadline=None)
@given(counts, st.data())
def test_psi_is_non_negative_and_js_is_a_bounded_symmetric_distance(r, data):
    w = data.draw(st.lists(st.integers(0, 10_000), min_size=len(r), max_size=len(r)))
    if sum(r) == 0 or sum(w) == 0:
        return
    assert psi(r, w) >= -1e-12
    d = js_distance(r, w)
    assert -1e-12 <= d <= 1 + 1e-12 and d == pytest.approx(js_distance(w, r), abs=1e-12)
    assert d == pytest.approx(jensenshannon(r, w, base=2), abs=1e-9)
    assert js_distance(r, r) == pytest.approx(0, abs=1e-7) and psi(r, r) == pytest.approx(0, abs=1e-12)


def test_null_quantiles_are_calibrated(reference_frame):
    """A reference and windows drawn independently from one population (the German rows)
    exceed the recorded null 95th percentiles of PSI, JS distance and Wasserstein about 5% of
    the time: the asymptotic distributions are close at these sizes."""
    rng = np.random.default_rng(11)
    spec = ProfileSpec(numeric=("credit_amount", "duration", "age"), score="score", threshold=0.5, label="risk")
    exceed = {"psi": 0, "js_distance": 0, "wasserstein_normalised": 0}
    trials = 0
    for _ in range(8):
        profile = ReferenceProfile.from_frame(reference_frame.iloc[rng.integers(0, 1000, 1000)], spec)
        windows = [window_of_rows(profile, reference_frame.iloc[rng.integers(0, 1000, 800)]) for _ in range(50)]
        for doc in windows_evaluate(windows, profile, limits=Limits(resamples=0)):
            for column in ("credit_amount", "duration", "age"):
                trials += 1
                for name in exceed:
                    figure = _figure(doc, name, column)
                    exceed[name] += figure["value"] > figure["null_p95"]
    rates = {k: v / trials for k, v in exceed.items()}
    assert all(0.01 <= r <= 0.12 for r in rates.values()), rates


# --- verdicts: never a false ok ------------------------------------------------------------------

def test_a_small_window_is_inconclusive_with_its_reason(reference, shifted):
    doc = window_evaluate(window_of_rows(reference, shifted.head(40)), reference)
    for figure in doc["statistics"]:
        assert figure["verdict"] != "ok", figure
        if figure["verdict"] == "inconclusive":
            assert figure["reason"]
    assert "at least" in _figure(doc, "psi", "age")["reason"]
    assert "40" in _figure(doc, "missing_rate", "age")["reason"]


@hsettings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 260))
def test_no_window_too_small_for_its_noise_is_ok(reference, reference_frame, seed, n):
    rng = np.random.default_rng(seed)
    doc = window_evaluate(window_of_rows(reference, reference_frame.iloc[rng.integers(0, 1000, n)]), reference,
                          limits=Limits(resamples=50))
    for figure in doc["statistics"]:
        if figure["statistic"] in ("psi", "js_distance") and figure["verdict"] == "ok":
            assert figure["null_p95"] < figure["limits"]["warn"]
        if figure["verdict"] == "ok" and "interval" in figure and figure["statistic"] != "demographic_parity_ratio":
            assert figure["interval"][1] <= figure["limits"]["warn"] + 1e-12 or figure["statistic"] in (
                "accuracy", "true_positive_rate", "precision")
        if figure["n"] < 100 and figure["statistic"] not in ("accuracy", "true_positive_rate", "false_positive_rate",
                                                             "precision"):
            assert figure["verdict"] != "ok"


def test_verdict_rules():
    # a rate whose bad side is up: alert only when the whole interval is past the alert limit
    assert rate_verdict(0.08, 0.06, 0.10, 0.01, 0.05, higher_is_bad=True)[0] == "alert"
    assert rate_verdict(0.06, 0.04, 0.08, 0.01, 0.05, higher_is_bad=True)[0] == "warn"
    assert rate_verdict(0.001, 0.0, 0.009, 0.01, 0.05, higher_is_bad=True)[0] == "ok"
    assert rate_verdict(0.001, 0.0, 0.03, 0.01, 0.05, higher_is_bad=True)[0] == "inconclusive"
    # and down (performance, parity)
    assert rate_verdict(0.6, 0.55, 0.65, 0.75, 0.70, higher_is_bad=False)[0] == "alert"
    assert rate_verdict(0.85, 0.81, 0.89, 0.8, 0.8, higher_is_bad=False)[0] == "ok"
    assert rate_verdict(0.85, 0.7, 0.95, 0.8, 0.8, higher_is_bad=False)[0] == "inconclusive"
    # a distance: the null's 95th percentile guards both alert and ok
    assert distance_verdict(0.3, 0.05, 0.1, 0.25)[0] == "alert"
    assert distance_verdict(0.3, 0.4, 0.1, 0.25)[0] == "warn"
    assert distance_verdict(0.05, 0.02, 0.1, 0.25)[0] == "ok"
    assert distance_verdict(0.05, 0.12, 0.1, 0.25)[0] == "inconclusive"
    assert distance_verdict(0.05, 0.02, 0.1, 0.25, upper=0.11)[0] == "inconclusive"
    assert "no upper bound" in distance_verdict(0.05, 0.02, 0.1, 0.25, upper=math.inf)[1]
    assert distance_verdict(None, None, 0.1, 0.25)[0] == "inconclusive"


def test_integrity_rates(reference, shifted):
    frame = shifted.head(1000).copy()
    frame["duration"] = frame["duration"].astype(object)
    frame.loc[0:79, "duration"] = None          # 8% missing: the whole interval above 5%: alert
    frame.loc[80:84, "duration"] = "not a number"
    frame.loc[0:29, "purpose"] = "crypto"       # 3% unseen
    doc = window_evaluate(window_of_rows(reference, frame.astype({"duration": str}).replace({"None": None})), reference)
    missing = _figure(doc, "missing_rate", "duration")
    assert missing["value"] == 0.08 and missing["count"] == 80 and missing["verdict"] == "alert"
    assert missing["interval"] == pytest.approx(list(binomtest(80, 1000).proportion_ci(method="wilson")), abs=1e-12)
    assert _figure(doc, "type_violations", "duration")["count"] == 5
    unseen = _figure(doc, "unseen_share", "purpose")
    assert unseen["count"] == 30 and unseen["unseen_named"] == {"crypto": 30} and unseen["verdict"] == "warn"
    amount = _figure(doc, "range_violations", "credit_amount")
    over = (frame["credit_amount"] > reference.numeric_section("credit_amount")["max"]).sum()
    assert amount["count"] == over and amount["expected"] == pytest.approx(2 / 1001)
    assert _figure(doc, "missing_rate", "age")["verdict"] == "ok"


# --- performance and fairness ------------------------------------------------------------------

@pytest.fixture(scope="module")
def labelled(reference, schedule, production_frame, production_labels, tmp_path_factory):
    from governance.monitoring.ingest import ingest_batch

    path = tmp_path_factory.mktemp("labelled") / "batch.parquet"
    production_frame.to_parquet(path)
    outcome = ingest_batch(path, file_format="parquet", reference=reference, schedule=schedule,
                           timestamp_column="ts", prediction_id_column="pid", key=KEY)
    labels = {prediction_key(p, KEY): int(y) for p, y in zip(production_frame["pid"], production_labels)}
    windows = labels_apply(outcome.windows, outcome.join_records, labels).windows
    merged = None
    for w in windows.values():
        merged = w if merged is None else merged.merge(type(w).from_json({**w.to_json(), "start": merged.start,
                                                                          "end": merged.end}, reference))
    return merged


def test_performance_equals_sklearn_with_wilson_intervals(reference, labelled, production_frame, production_labels):
    y, pred = production_labels, (production_frame["score"] >= 0.5).astype(int)
    gate = {"accuracy": 0.9, "true_positive_rate": None}
    doc = window_evaluate(labelled, reference, gate=gate)
    accuracy = _figure(doc, "accuracy")
    assert accuracy["value"] == pytest.approx(accuracy_score(y, pred), abs=1e-15)
    assert accuracy["limits"]["baseline"] == 0.9 and accuracy["limits"]["baseline_from"] == "gate"
    assert accuracy["verdict"] == "alert"  # a model scoring random labels is far below 0.9
    k = int((y == pred).sum())
    assert accuracy["interval"] == pytest.approx(list(binomtest(k, len(y)).proportion_ci(method="wilson")), abs=1e-12)
    assert _figure(doc, "true_positive_rate")["value"] == pytest.approx(recall_score(y, pred))
    assert _figure(doc, "precision")["value"] == pytest.approx(precision_score(y, pred))
    fpr = ((pred == 1) & (y == 0)).sum() / (y == 0).sum()
    assert _figure(doc, "false_positive_rate")["value"] == pytest.approx(fpr)
    ref_cells = np.array(reference.doc["groups"]["counts"]).sum(axis=0)
    ref_tpr = ref_cells[1, 2] / (ref_cells[1, 2] + ref_cells[0, 2])
    assert _figure(doc, "true_positive_rate")["limits"]["baseline"] == pytest.approx(ref_tpr)


def test_fairness_equals_fairlearn_with_intervals(reference, labelled, production_frame, production_labels):
    doc = window_evaluate(labelled, reference, limits=Limits(seed=5), intersections=(("sex", "age"),))
    figure = _figure(doc, "demographic_parity_ratio", "sex")
    pred = (production_frame["score"] >= 0.5).astype(int)
    assert figure["value"] == pytest.approx(
        demographic_parity_ratio(production_labels, pred, sensitive_features=production_frame["sex"]), rel=1e-12)
    lo, hi = figure["interval"]
    assert lo <= figure["value"] <= hi and figure["bootstrap"]["seed"] == 5
    again = window_evaluate(labelled, reference, limits=Limits(seed=5), intersections=(("sex", "age"),))
    assert _figure(again, "demographic_parity_ratio", "sex")["interval"] == figure["interval"]
    for group in figure["groups"]:
        rows = production_frame["sex"] == group["group"]
        assert group["n"] == rows.sum()
        assert group["selection_rate"]["value"] == pytest.approx(pred[rows].mean())
        positives = rows & (production_labels == 1)
        assert group["true_positive_rate"]["value"] == pytest.approx(pred[positives].mean())
        k, n = int(pred[positives].sum()), int(positives.sum())
        assert group["true_positive_rate"]["interval"] == pytest.approx(
            list(binomtest(k, n).proportion_ci(method="wilson")), abs=1e-12)
    inter = _figure(doc, "demographic_parity_ratio", "sex & age")
    assert {g["group"] for g in inter["groups"]} <= {f"{s} & {b}" for s in ("female", "male") for b in ("<25", "25-<60", ">=60")}


def test_fairness_with_a_small_group_is_never_ok(reference, shifted):
    frame = shifted.head(400).copy()
    frame.loc[frame.index[20:], "sex"] = "male"  # at most 20 women left
    doc = window_evaluate(window_of_rows(reference, frame), reference)
    figure = _figure(doc, "demographic_parity_ratio", "sex")
    assert figure["verdict"] == "inconclusive" and "female" in figure["reason"] + " ".join(figure["too_small"])


# --- the document --------------------------------------------------------------------------------

def test_evaluation_is_canonical_json_with_its_sources(reference, shifted_doc):
    json.dumps(shifted_doc, allow_nan=False)
    canonical_json(shifted_doc)
    assert shifted_doc["verdict"] == "alert"
    assert sum(shifted_doc["verdicts"].values()) == len(shifted_doc["statistics"])
    for figure in shifted_doc["statistics"]:
        assert figure["verdict"] in ("ok", "warn", "alert", "inconclusive")
        assert set(figure["sources"]) <= set(shifted_doc["sources"]) <= set(SOURCES)
        assert {"statistic", "column", "value", "limits", "n", "verdict", "reason"} <= set(figure)
    assert "no documented origin" in shifted_doc["sources"]["psi-rule-of-thumb"]


def test_windows_evaluate_equals_one_at_a_time(reference, production_frame, production_weeks):
    windows = [window_of_rows(reference, production_frame[production_weeks == k]) for k in range(6)]
    assert windows_evaluate(windows, reference) == [window_evaluate(w, reference) for w in windows]


def test_score_quantiles_from_the_bins_bracket_numpy(reference, shifted):
    window = window_of_rows(reference, shifted)
    for q in window_quantiles(reference, window, "score", [0.1, 0.5, 0.9]):
        exact = np.quantile(shifted["score"], q["probability"], method="inverted_cdf")
        lo, hi = q["bounds"]
        assert lo <= exact <= hi and lo <= q["estimate"] <= hi
