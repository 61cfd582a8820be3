"""Real German credit data and real models for the gate tests (no database needed)."""

import pandas as pd
import pytest
from django.conf import settings
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from governance.gates.credit_models import credit_policy_document, train_fair_model, train_skewed_model

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
    return train_fair_model(german)


@pytest.fixture(scope="session")
def skewed_model(german):
    """Gradient boosting with `sex` as an input, trained on labels skewed against women."""
    return train_skewed_model(german)


@pytest.fixture(scope="session")
def linear_model(german):
    model = credit_pipeline(CATEGORICAL, LogisticRegression(max_iter=1000), scale=True)
    return model.fit(german[CATEGORICAL + NUMERIC], german["risk"])


def credit_policy(**explainability):
    return credit_policy_document(**explainability)
