"""Real German credit data and real models for the gate tests (no database needed)."""

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from governance.gates.policy import HIGH_RISK_DEFAULT

CATEGORICAL = ["job", "housing", "saving_accounts", "checking_account", "purpose"]
NUMERIC = ["credit_amount", "duration", "age"]


@pytest.fixture(scope="session")
def german():
    return pd.read_csv(settings.BASE_DIR / "governance" / "data" / "german_credit.csv")


def credit_pipeline(categorical, estimator, *, scale=False):
    numeric = ("num", StandardScaler(), NUMERIC) if scale else ("num", "passthrough", NUMERIC)
    prep = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical), numeric]
    )
    return Pipeline([("prep", prep), ("model", estimator)])


@pytest.fixture(scope="session")
def fair_model(german):
    """Gradient boosting without `sex` among its inputs."""
    model = credit_pipeline(CATEGORICAL, GradientBoostingClassifier(random_state=0))
    return model.fit(german[CATEGORICAL + NUMERIC], german["risk"])


@pytest.fixture(scope="session")
def skewed_model(german):
    """Gradient boosting with `sex` as an input, trained on labels skewed against women:
    60 % of the women's labels were turned into 'bad risk'."""
    rng = np.random.default_rng(0)
    labels = german["risk"].copy()
    women = (german["sex"] == "female").to_numpy()
    labels[women & (rng.random(len(german)) < 0.6)] = 0
    model = credit_pipeline(["sex", *CATEGORICAL], GradientBoostingClassifier(random_state=0))
    return model.fit(german[["sex", *CATEGORICAL, *NUMERIC]], labels)


@pytest.fixture(scope="session")
def linear_model(german):
    model = credit_pipeline(CATEGORICAL, LogisticRegression(max_iter=1000), scale=True)
    return model.fit(german[CATEGORICAL + NUMERIC], german["risk"])


def credit_policy(**explainability):
    """The high-risk default with `sex` named, without equalized odds (on 1,000 rows its
    interval is too wide to decide: see test_default_policy_is_inconclusive_on_small_data),
    and a small SHAP sample to keep tests quick."""
    policy = {
        **HIGH_RISK_DEFAULT,
        "fairness": {
            **HIGH_RISK_DEFAULT["fairness"],
            "sensitive_features": [{"column": "sex"}],
            "metrics": {
                "demographic_parity_ratio": {"min": 0.8},
                "demographic_parity_difference": {"max": 0.1},
                "equal_opportunity_difference": {"max": 0.1},
            },
        },
        "explainability": {**HIGH_RISK_DEFAULT["explainability"], "explained_rows": 200, **explainability},
    }
    return policy
