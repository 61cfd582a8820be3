"""Two credit-scoring models on the German credit data that show what a gate does: one
without `sex` among its inputs (it passes the credit policy) and one trained with `sex` on
labels skewed against women (it fails). Used by the demo, the tests and the benchmark."""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from .policy import HIGH_RISK_DEFAULT

CATEGORICAL = ["job", "housing", "saving_accounts", "checking_account", "purpose"]
NUMERIC = ["credit_amount", "duration", "age"]
LABEL = "risk"
SKEW_SHARE = 0.6  # share of women's labels turned into 'bad risk' for the skewed model


def credit_pipeline(categorical, estimator) -> Pipeline:
    prep = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
         ("num", "passthrough", NUMERIC)]
    )
    return Pipeline([("prep", prep), ("model", estimator)])


def train_fair_model(df: pd.DataFrame, *, seed: int = 0, n_estimators: int = 100) -> Pipeline:
    """Gradient boosting without `sex` among its inputs."""
    model = credit_pipeline(CATEGORICAL, GradientBoostingClassifier(random_state=seed, n_estimators=n_estimators))
    return model.fit(df[CATEGORICAL + NUMERIC], df[LABEL])


def train_skewed_model(df: pd.DataFrame, *, seed: int = 0) -> Pipeline:
    """Gradient boosting with `sex` as an input, trained on labels skewed against women."""
    rng = np.random.default_rng(seed)
    labels = df[LABEL].copy()
    women = (df["sex"] == "female").to_numpy()
    labels[women & (rng.random(len(df)) < SKEW_SHARE)] = 0
    model = credit_pipeline(["sex", *CATEGORICAL], GradientBoostingClassifier(random_state=seed))
    return model.fit(df[["sex", *CATEGORICAL, *NUMERIC]], labels)


def credit_policy_document(**explainability) -> dict:
    """The high-risk default with `sex` named, and without equalized
    odds: on the 1,000 German credit rows its interval is too wide to decide either way
    (the false-positive rate of 109 women with bad risk), which the default policy reports
    as inconclusive."""
    return {
        **HIGH_RISK_DEFAULT,
        "name": "Retail credit",
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
