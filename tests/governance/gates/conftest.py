"""Real German credit data and real models for the gate tests (no database needed)."""

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from governance.demo.credit import (
    CATEGORICAL,
    GERMAN_CREDIT_CSV,
    NUMERIC,
    credit_pipeline,
    credit_policy_document,
    train_fair_model,
    train_skewed_model,
)

# The gate tests' own models leave `sex` out of their inputs, as the fair demo model does.
CATEGORICAL = [c for c in CATEGORICAL if c != "sex"]


@pytest.fixture(scope="session")
def german():
    return pd.read_csv(GERMAN_CREDIT_CSV)


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
