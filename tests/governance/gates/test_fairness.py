import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from governance.gates.fairness import fairness_figures, sensitive_values


@pytest.fixture(scope="module")
def predictions(german, skewed_model):
    x = german[["sex", "job", "housing", "saving_accounts", "checking_account", "purpose",
                "credit_amount", "duration", "age"]]
    return german["risk"].to_numpy() == 1, skewed_model.predict(x) == 1


def test_figures_equal_direct_fairlearn_calls(german, predictions):
    y, pred = predictions
    figures = fairness_figures(german, y, pred, features=[{"column": "sex"}], intersections=[],
                               resamples=0, confidence=0.95, seed=1)
    sex = figures["features"][0]
    metrics = {k: v["value"] for k, v in sex["metrics"].items()}
    s = german["sex"]
    assert metrics == {
        "demographic_parity_difference": demographic_parity_difference(y, pred, sensitive_features=s),
        "demographic_parity_ratio": demographic_parity_ratio(y, pred, sensitive_features=s),
        "equalized_odds_difference": equalized_odds_difference(y, pred, sensitive_features=s),
        "equal_opportunity_difference": equal_opportunity_difference(y, pred, sensitive_features=s),
    }
    direct = MetricFrame(metrics={"sr": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
                         y_true=y, y_pred=pred, sensitive_features=s).by_group
    for group in sex["groups"]:
        row = direct.loc[group["group"]]
        assert group["count"] == int((s == group["group"]).sum())
        assert (group["selection_rate"], group["true_positive_rate"], group["false_positive_rate"]) == (
            row["sr"], row["tpr"], row["fpr"])
    assert metrics["demographic_parity_ratio"] < 0.5  # the skew is visible


def test_intersections_and_binned_features_match_fairlearn(german, predictions):
    y, pred = predictions
    features = [{"column": "sex"}, {"column": "age", "cut_points": [25, 40]}]
    figures = fairness_figures(german, y, pred, features=features, intersections=[["sex", "age"]],
                               resamples=0, confidence=0.95, seed=1)
    names = [f["name"] for f in figures["features"]]
    assert names == ["sex", "age", "sex & age"]
    age = sensitive_values(german, features[1])
    assert set(age) == {"<25", "25-<40", ">=40"}
    inter = figures["features"][2]
    both = pd.concat([german["sex"], age], axis=1)
    assert inter["metrics"]["demographic_parity_difference"]["value"] == demographic_parity_difference(
        y, pred, sensitive_features=both)
    assert sum(g["count"] for g in inter["groups"]) == len(german)
    assert inter["empty_groups"] == []
    rows = MetricFrame(metrics={"sr": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
                       y_true=y, y_pred=pred, sensitive_features=both).by_group
    for group in inter["groups"]:
        row = rows.loc[(group["values"]["sex"], group["values"]["age"])]
        assert (group["selection_rate"], group["true_positive_rate"], group["false_positive_rate"]) == (
            row["sr"], row["tpr"], row["fpr"])


def test_empty_intersection_is_reported(german, predictions):
    y, pred = predictions
    frame = german.assign(branch=np.where(german["sex"] == "female", "north", "south"))
    figures = fairness_figures(frame, y, pred, features=[{"column": "sex"}, {"column": "branch"}],
                               intersections=[["sex", "branch"]], resamples=0, confidence=0.95, seed=1)
    assert figures["features"][2]["empty_groups"] == ["female & south", "male & north"]


def test_bootstrap_is_seeded_and_agrees_with_resampling_rows(german, predictions):
    y, pred = predictions
    kwargs = dict(features=[{"column": "sex"}], intersections=[], resamples=400, confidence=0.9)
    a = fairness_figures(german, y, pred, seed=5, **kwargs)
    b = fairness_figures(german, y, pred, seed=5, **kwargs)
    c = fairness_figures(german, y, pred, seed=6, **kwargs)
    assert a == b
    assert a != c
    # The naive bootstrap: resample rows, call fairlearn. Same distribution, so the
    # percentile intervals agree up to Monte-Carlo error.
    rng = np.random.default_rng(0)
    sex = german["sex"].to_numpy()
    naive = []
    for _ in range(400):
        idx = rng.integers(0, len(y), len(y))
        naive.append(demographic_parity_difference(y[idx], pred[idx], sensitive_features=sex[idx]))
    lo, hi = np.quantile(naive, [0.05, 0.95])
    ci = a["features"][0]["metrics"]["demographic_parity_difference"]["ci"]
    assert abs(ci[0] - lo) < 0.03 and abs(ci[1] - hi) < 0.03
    value = a["features"][0]["metrics"]["demographic_parity_difference"]["value"]
    assert ci[0] < value < ci[1]
    assert a["bootstrap"]["seed"] == 5
