import os
import pickle

import numpy as np
import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

from governance.storage import artifacts
from governance.storage.artifacts import ArtifactRefused, load_artifact_bytes, load_model
from governance.demo.credit import feature_columns, german_credit_frame


def test_skops_pipeline_loads_and_predicts(credit_model_version, credit_model_artifact):
    model = load_model(credit_model_version)
    df = german_credit_frame()
    proba = model.predict_proba(df[feature_columns(df)])
    assert proba.shape == (1000, 2)
    assert credit_model_version.feature_names == feature_columns(df)
    assert credit_model_version.framework == "scikit-learn"


def test_skops_with_untrusted_types_is_refused_naming_them():
    data = sio.dumps(FunctionTransformer(func=os.system))
    with pytest.raises(ArtifactRefused, match="posix.system|nt.system"):
        load_artifact_bytes(data, "skops")


def test_pickle_and_joblib_are_refused_unless_allowed(settings):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    data = pickle.dumps(model)
    for fmt in ("pickle", "joblib"):
        with pytest.raises(ArtifactRefused, match="refused"):
            load_artifact_bytes(data, fmt)
    settings.CUSTOS_ALLOW_PICKLE_ARTIFACTS = True
    assert load_artifact_bytes(data, "pickle").model.predict([[1.0]])[0] == 1


def _xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


@pytest.mark.parametrize("suffix,fmt", [("json", "xgboost-json"), ("ubj", "xgboost-ubj")])
def test_xgboost_formats_load(tmp_path, suffix, fmt):
    import xgboost

    X, y = _xy()
    clf = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    path = tmp_path / f"m.{suffix}"
    clf.save_model(path)
    loaded = load_artifact_bytes(path.read_bytes(), fmt)
    assert loaded.framework == "xgboost"
    np.testing.assert_allclose(loaded.model.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


def test_lightgbm_text_loads(tmp_path):
    import lightgbm

    X, y = _xy()
    booster = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, y), num_boost_round=5)
    loaded = load_artifact_bytes(booster.model_to_string().encode(), "lightgbm-text")
    assert loaded.model.predict_proba(X).shape == (200, 2)
    assert loaded.feature_names == booster.feature_name()


@pytest.mark.parametrize("fmt", ["skops", "xgboost-json", "xgboost-ubj", "lightgbm-text"])
def test_garbage_does_not_load(fmt):
    with pytest.raises(ArtifactRefused, match="does not load"):
        load_artifact_bytes(b"{not a model", fmt)


@pytest.mark.parametrize("fmt", ["skops", "xgboost-json", "xgboost-ubj", "lightgbm-text"])
def test_refusals_name_the_problem_in_one_line_without_server_paths(fmt):
    """XGBoost's errors carry its C++ source location and a native stack trace with the
    server's install paths; the refusal an API client reads says what is wrong and no more."""
    with pytest.raises(ArtifactRefused) as refused:
        load_artifact_bytes(b"{not a model", fmt)
    message = str(refused.value)
    assert "\n" not in message and "Stack trace" not in message
    assert "site-packages" not in message and ".cc:" not in message and len(message) < 400


def test_tampered_stored_artifact_is_refused(credit_model_version):
    path = artifacts.artifact_path(credit_model_version.artifact_path)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ArtifactRefused, match="SHA-256"):
        load_model(credit_model_version)
