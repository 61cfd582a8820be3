"""The German credit data with synthetic applicant ids, and the credit-scoring model trained on
it: shared by the demo and by the tests of every feature, so both use the same thing."""

from pathlib import Path

import pandas as pd

GERMAN_CREDIT_CSV = Path(__file__).parent / "data" / "german_credit.csv"
SUBJECT_COLUMN = "applicant_id"
LABEL = "risk"
SENSITIVE_COLUMNS = ["sex", "age"]
PERSONAL_COLUMNS = [SUBJECT_COLUMN, "sex", "age", "job", "housing", "saving_accounts", "checking_account"]
CATEGORICAL = ["sex", "housing", "saving_accounts", "checking_account", "purpose"]


def german_credit_frame() -> pd.DataFrame:
    """The 1,000 applicants with synthetic subject ids applicant-0001 … applicant-1000 (row order)."""
    df = pd.read_csv(GERMAN_CREDIT_CSV)
    df.insert(0, SUBJECT_COLUMN, [f"applicant-{i:04d}" for i in range(1, len(df) + 1)])
    return df


def feature_columns(df: pd.DataFrame) -> list:
    return [c for c in df.columns if c not in (SUBJECT_COLUMN, LABEL)]


def train_credit_model(df: pd.DataFrame, *, kind: str = "tree", seed: int = 0):
    """Fit a scikit-learn Pipeline (one-hot encoding + a tree or logistic regression) on DF.

    Return (pipeline, parameters, metrics on DF).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    features = feature_columns(df)
    numeric = [c for c in features if c not in CATEGORICAL]
    if kind == "tree":
        params = {"max_depth": 5, "min_samples_leaf": 10, "random_state": seed}
        estimator = DecisionTreeClassifier(**params)
    else:
        params = {"C": 1.0, "max_iter": 1000, "random_state": seed}
        estimator = LogisticRegression(**params)
    prep = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ("numeric", StandardScaler(), numeric),
        ]
    )
    pipeline = Pipeline([("prepare", prep), ("classify", estimator)])
    X, y = df[features], df[LABEL]
    pipeline.fit(X, y)
    proba = pipeline.predict_proba(X)[:, 1]
    metrics = {
        "train_accuracy": round(float(accuracy_score(y, pipeline.predict(X))), 6),
        "train_roc_auc": round(float(roc_auc_score(y, proba)), 6),
    }
    return pipeline, {"estimator": type(estimator).__name__, **params}, metrics


def library_versions() -> dict:
    import numpy
    import sklearn
    import skops

    return {"scikit-learn": sklearn.__version__, "numpy": numpy.__version__, "pandas": pd.__version__, "skops": skops.__version__}
