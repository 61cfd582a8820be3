"""The German credit data with synthetic applicant ids, and the models trained on it.

Shared by the demo, the tests and the benchmarks, so all of them use the same thing:

- ``train_credit_model``: the registry demo's credit-scoring pipeline (a tree or a logistic
  regression on every column);
- ``train_fair_model`` / ``train_skewed_model``: the release-gates demo's pair, one without
  `sex` among its inputs (it passes the credit policy) and one trained with `sex` on labels
  skewed against women (it fails);
- ``credit_policy_document``: the gate policy those two are judged under.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import skops
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from ..gates.policy import HIGH_RISK_DEFAULT

GERMAN_CREDIT_CSV = Path(__file__).parent / "data" / "german_credit.csv"
SUBJECT_COLUMN = "applicant_id"
LABEL = "risk"
SENSITIVE_COLUMNS = ["sex", "age"]
PERSONAL_COLUMNS = [SUBJECT_COLUMN, "sex", "age", "job", "housing", "saving_accounts", "checking_account"]
# The columns of the German credit data by kind (`job` is a skill level coded 0-3: a category).
CATEGORICAL = ["sex", "job", "housing", "saving_accounts", "checking_account", "purpose"]
NUMERIC = ["credit_amount", "duration", "age"]
SKEW_SHARE = 0.6  # share of women's labels turned into 'bad risk' for the skewed model


def german_credit_frame() -> pd.DataFrame:
    """The 1,000 applicants with synthetic subject ids applicant-0001 … applicant-1000 (row order)."""
    df = pd.read_csv(GERMAN_CREDIT_CSV)
    df.insert(0, SUBJECT_COLUMN, [f"applicant-{i:04d}" for i in range(1, len(df) + 1)])
    return df


def feature_columns(df: pd.DataFrame) -> list:
    return [c for c in df.columns if c not in (SUBJECT_COLUMN, LABEL)]


def credit_pipeline(categorical, estimator, *, scale: bool = False):
    """One-hot encode CATEGORICAL, pass (or scale) the numeric columns, then ESTIMATOR."""
    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(categorical)),
            ("num", StandardScaler() if scale else "passthrough", NUMERIC),
        ]
    )
    return Pipeline([("prep", prep), ("model", estimator)])


def train_credit_model(df: pd.DataFrame, *, kind: str = "tree", seed: int = 0, c: float = 1.0):
    """Fit the credit-scoring pipeline (a tree or a logistic regression) on every feature of DF.

    Return (pipeline, parameters, metrics on DF).
    """
    if kind == "tree":
        params = {"max_depth": 5, "min_samples_leaf": 10, "random_state": seed}
        estimator = DecisionTreeClassifier(**params)
    else:
        params = {"C": c, "max_iter": 1000, "random_state": seed}
        estimator = LogisticRegression(**params)
    pipeline = credit_pipeline(CATEGORICAL, estimator, scale=True)
    X, y = df[feature_columns(df)], df[LABEL]
    pipeline.fit(X, y)
    proba = pipeline.predict_proba(X)[:, 1]
    metrics = {
        "train_accuracy": round(float(accuracy_score(y, pipeline.predict(X))), 6),
        "train_roc_auc": round(float(roc_auc_score(y, proba)), 6),
    }
    return pipeline, {"estimator": type(estimator).__name__, **params}, metrics


def train_fair_model(df: pd.DataFrame, *, seed: int = 0, n_estimators: int = 100):
    """Gradient boosting without `sex` among its inputs."""
    categorical = [c for c in CATEGORICAL if c != "sex"]
    model = credit_pipeline(categorical, GradientBoostingClassifier(random_state=seed, n_estimators=n_estimators))
    return model.fit(df[categorical + NUMERIC], df[LABEL])


def train_skewed_model(df: pd.DataFrame, *, seed: int = 0):
    """Gradient boosting with `sex` as an input, trained on labels skewed against women."""
    rng = np.random.default_rng(seed)
    labels = df[LABEL].copy()
    women = (df["sex"] == "female").to_numpy()
    labels[women & (rng.random(len(df)) < SKEW_SHARE)] = 0
    model = credit_pipeline(CATEGORICAL, GradientBoostingClassifier(random_state=seed))
    return model.fit(df[CATEGORICAL + NUMERIC], labels)


def credit_policy_document(**explainability) -> dict:
    """The high-risk default with `sex` named, and without equalized odds: on the 1,000 German
    credit rows its interval is too wide to decide either way (the false-positive rate of 109
    women with bad risk), which the default policy reports as inconclusive."""
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


def library_versions() -> dict:

    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "pandas": pd.__version__, "skops": skops.__version__}
