import numpy as np
import pytest
import shap
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.neighbors import KNeighborsClassifier

from governance.gates.explain import explain, explainer_kind, ndcg, raw_column_map

from .conftest import CATEGORICAL, NUMERIC, credit_pipeline

INPUTS = CATEGORICAL + NUMERIC


def _direct_raw_importance(model, values, frame):
    """Sum the one-hot columns of each raw column by hand from the encoder's categories."""
    encoder = model.named_steps["prep"].named_transformers_["cat"]
    widths = [len(c) for c in encoder.categories_]
    out, start = {}, 0
    for column, width in zip(CATEGORICAL, widths):
        out[column] = np.abs(values[:, start:start + width].sum(axis=1)).mean()
        start += width
    for column in NUMERIC:
        out[column] = np.abs(values[:, start]).mean()
        start += 1
    return out


def test_tree_pipeline_matches_direct_tree_explainer(german, fair_model):
    x = german[INPUTS]
    figures = explain(fair_model, x, positive_index=1, background_rows=50, explained_rows=120, seed=3,
                      time_budget_seconds=60)
    assert figures["explainer"] == "tree" and figures["model_output"] == "log_odds"
    prep, gbm = fair_model.named_steps["prep"], fair_model.named_steps["model"]
    background = prep.transform(x.iloc[figures["background_indices"]])
    rows = prep.transform(x.iloc[figures["explained_indices"]])
    direct = shap.TreeExplainer(gbm, data=background, feature_perturbation="interventional").shap_values(rows)
    expected = _direct_raw_importance(fair_model, direct, x)
    assert set(figures["importance"]) == set(INPUTS)
    for column in INPUTS:
        assert figures["importance"][column] == pytest.approx(expected[column], abs=1e-12)
    assert figures["additivity_error"] < 1e-6
    assert len(figures["explained_indices"]) == 120 and len(figures["background_indices"]) == 50
    assert abs(sum(figures["shares"].values()) - 1) < 1e-9


def test_linear_model_uses_linear_explainer(german, linear_model):
    x = german[INPUTS]
    figures = explain(linear_model, x, positive_index=1, background_rows=80, explained_rows=100, seed=3,
                      time_budget_seconds=60)
    assert figures["explainer"] == "linear"
    prep, lr = linear_model.named_steps["prep"], linear_model.named_steps["model"]
    background = prep.transform(x.iloc[figures["background_indices"]])
    rows = prep.transform(x.iloc[figures["explained_indices"]])
    direct = shap.LinearExplainer(lr, shap.maskers.Independent(background, max_samples=80)).shap_values(rows)
    expected = _direct_raw_importance(linear_model, direct, x)
    for column in INPUTS:
        assert figures["importance"][column] == pytest.approx(expected[column], abs=1e-12)
    assert figures["additivity_error"] < 1e-9


def test_sampling_is_seeded(german, fair_model):
    x = german[INPUTS]
    kwargs = dict(positive_index=1, background_rows=30, explained_rows=40, time_budget_seconds=60)
    a, b = explain(fair_model, x, seed=11, **kwargs), explain(fair_model, x, seed=11, **kwargs)
    c = explain(fair_model, x, seed=12, **kwargs)
    assert a["explained_indices"] == b["explained_indices"] and a["raw_values"] == b["raw_values"]
    assert a["explained_indices"] != c["explained_indices"]


def test_other_models_get_a_seeded_permutation_explainer_within_the_budget(german):
    x = german[INPUTS]
    model = credit_pipeline(CATEGORICAL, KNeighborsClassifier(), scale=True).fit(x, german["risk"])
    assert explainer_kind(model.named_steps["model"]) == "permutation"
    kwargs = dict(positive_index=1, background_rows=20, explained_rows=20, time_budget_seconds=60)
    a, b = explain(model, x, seed=2, **kwargs), explain(model, x, seed=2, **kwargs)
    assert a["explainer"] == "permutation" and not a["budget_exhausted"]
    assert a["raw_values"] == b["raw_values"]
    assert set(a["importance"]) == set(INPUTS)
    tight = explain(model, x, seed=2, positive_index=1, background_rows=20, explained_rows=200,
                    time_budget_seconds=1e-9)
    assert tight["budget_exhausted"] and tight["explained_count"] == 0


def test_raw_column_map_sums_one_hot_columns(fair_model):
    prep = fair_model.named_steps["prep"]
    names = list(prep.get_feature_names_out())
    mapping = raw_column_map(prep, names, INPUTS)
    assert mapping.count("purpose") == len(prep.named_transformers_["cat"].categories_[4])
    assert mapping[-3:] == NUMERIC


def test_ndcg():
    base = {"a": 3.0, "b": 2.0, "c": 1.0}
    assert ndcg(base, base) == pytest.approx(1.0)
    assert ndcg({"a": 1.0, "b": 2.0, "c": 3.0}, base) < 0.9
    assert ndcg({"a": 3.0, "b": 1.0, "c": 2.0}, base) > ndcg({"a": 1.0, "b": 2.0, "c": 3.0}, base)


def test_sensitive_input_is_visible_in_attribution(german, skewed_model):
    x = german[["sex", *INPUTS]]
    figures = explain(skewed_model, x, positive_index=1, background_rows=50, explained_rows=100, seed=1,
                      time_budget_seconds=60)
    assert figures["ranking"][0] == "sex"


def test_tree_model_without_pipeline(german):
    x = german[NUMERIC]
    model = GradientBoostingClassifier(random_state=0, n_estimators=30).fit(x, german["risk"])
    figures = explain(model, x, positive_index=1, background_rows=40, explained_rows=50, seed=1,
                      time_budget_seconds=60)
    direct = shap.TreeExplainer(model, data=x.iloc[figures["background_indices"]].to_numpy(float),
                                feature_perturbation="interventional").shap_values(
        x.iloc[figures["explained_indices"]].to_numpy(float))
    assert figures["importance"]["age"] == pytest.approx(np.abs(direct[:, 2]).mean(), abs=1e-12)


def test_bare_lightgbm_booster_as_the_registry_loads_it(german):
    """A LightGBM text model comes back from the registry as a Booster in a thin wrapper
    without classes_; it still gets the exact TreeExplainer."""
    import lightgbm

    from governance.gates.evaluate import evaluate

    from .conftest import credit_policy

    x = german[NUMERIC]
    booster = lightgbm.train({"objective": "binary", "verbose": -1, "seed": 0, "num_leaves": 8},
                             lightgbm.Dataset(x, german["risk"]), num_boost_round=20)

    class Wrapper:  # the shape of governance.storage.boosters.LightGBMClassifierModel
        def __init__(self, booster):
            self.booster = booster
            self.feature_names_in_ = np.array(booster.feature_name(), dtype=object)

        def predict_proba(self, X):
            p = np.asarray(self.booster.predict(X))
            return np.column_stack([1 - p, p])

        def predict(self, X):
            return self.predict_proba(X).argmax(axis=1)

    model = Wrapper(lightgbm.Booster(model_str=booster.model_to_string()))
    figures = explain(model, x, positive_index=1, background_rows=40, explained_rows=50, seed=1,
                      time_budget_seconds=60)
    assert figures["explainer"] == "tree" and figures["model_output"] == "log_odds"
    assert figures["additivity_error"] < 1e-6
    policy = credit_policy()
    policy["fairness"] = {**policy["fairness"], "sensitive_features": [{"column": "age", "cut_points": [25]}]}
    result = evaluate(model, german, label_column="risk", positive_label=1, policy=policy, seed=1)
    assert result["verdict"] in ("passed", "failed", "inconclusive")
    assert result["explainability"]["explainer"] == "tree"


def test_xgboost_json_model_as_the_registry_loads_it(german, tmp_path):
    import xgboost

    from governance.storage.artifacts import load_artifact_bytes

    x = german[NUMERIC + ["job"]]
    trained = xgboost.XGBClassifier(n_estimators=30, max_depth=3, random_state=0).fit(x, german["risk"])
    path = tmp_path / "model.json"
    trained.save_model(path)
    model = load_artifact_bytes(path.read_bytes(), "xgboost-json").model
    figures = explain(model, x, positive_index=1, background_rows=40, explained_rows=60, seed=1,
                      time_budget_seconds=60)
    assert figures["explainer"] == "tree" and figures["model_output"] == "log_odds"
    assert figures["additivity_error"] < 1e-5  # XGBoost computes in float32
    direct = shap.TreeExplainer(model, data=x.iloc[figures["background_indices"]].to_numpy(float),
                                feature_perturbation="interventional").shap_values(
        x.iloc[figures["explained_indices"]].to_numpy(float))
    assert figures["importance"]["duration"] == pytest.approx(np.abs(direct[:, 1]).mean(), abs=1e-9)
