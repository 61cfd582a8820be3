"""The German credit set as the reference, scored by a real logistic regression, and a
production stream made from it: rows resampled with a seed, ten minutes apart over
six weekly windows, with credit_amount x 1.3 from the third week on."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from governance.demo.credit import GERMAN_CREDIT_CSV
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from governance.monitoring.aggregates import GroupAttribute, ProfileSpec, ReferenceProfile, WindowAggregate, parse_rows
from governance.monitoring.ingest import WindowSchedule

NUMERIC = ("credit_amount", "duration", "age")
CATEGORICAL = ("job", "housing", "saving_accounts", "checking_account", "purpose", "sex")
ORIGIN = datetime(2024, 1, 1, tzinfo=timezone.utc)
WEEK = timedelta(days=7)
SEED = 20240101
PRODUCTION_ROWS = 6000
SHIFT_FROM = ORIGIN + 2 * WEEK
KEY = b"monitoring-test-join-key-32bytes"


@pytest.fixture(scope="session")
def german():
    return pd.read_csv(GERMAN_CREDIT_CSV)


@pytest.fixture(scope="session")
def credit_model(german):
    prep = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL)),
        ("num", StandardScaler(), list(NUMERIC)),
    ])
    model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000))])
    model.fit(german[list(CATEGORICAL + NUMERIC)], german["risk"])
    return model


@pytest.fixture(scope="session")
def spec():
    return ProfileSpec(
        numeric=NUMERIC, categorical=CATEGORICAL, score="score", threshold=0.5, label="risk", positive_label=1,
        groups=(GroupAttribute("sex"), GroupAttribute("age", (25, 60))),
    )


@pytest.fixture(scope="session")
def reference_frame(german, credit_model):
    frame = german.copy()
    frame["score"] = credit_model.predict_proba(frame[list(CATEGORICAL + NUMERIC)])[:, 1]
    return frame


@pytest.fixture(scope="session")
def reference(reference_frame, spec):
    return ReferenceProfile.from_frame(reference_frame, spec)


@pytest.fixture(scope="session")
def production(german, credit_model):
    """PRODUCTION_ROWS rows resampled from the German set (seed SEED), timestamps ten minutes
    apart from ORIGIN (ISO 8601 with a +01:00 offset), credit_amount x 1.3 from SHIFT_FROM,
    scored by the model, with prediction ids and a name column that must never be read.
    Returns (frame, the label each prediction gets later, the datetimes)."""
    rng = np.random.default_rng(SEED)
    frame = german.iloc[rng.integers(0, len(german), PRODUCTION_ROWS)].reset_index(drop=True).drop(columns=["risk"])
    labels = german["risk"].to_numpy()[rng.integers(0, len(german), PRODUCTION_ROWS)]
    moments = [ORIGIN + timedelta(minutes=10 * i) for i in range(PRODUCTION_ROWS)]
    shifted = np.array([m >= SHIFT_FROM for m in moments])
    frame["credit_amount"] = np.where(shifted, frame["credit_amount"] * 1.3, frame["credit_amount"])
    frame["score"] = credit_model.predict_proba(frame[list(CATEGORICAL + NUMERIC)])[:, 1]
    frame["ts"] = [m.astimezone(timezone(timedelta(hours=1))).isoformat() for m in moments]
    frame["pid"] = [f"pred-{i:06d}" for i in range(PRODUCTION_ROWS)]
    frame["applicant_name"] = "Zelda Quartermain-Sentinel"
    return frame, labels, moments


@pytest.fixture(scope="session")
def production_frame(production):
    return production[0]


@pytest.fixture(scope="session")
def production_labels(production):
    return production[1]


@pytest.fixture(scope="session")
def production_weeks(production):
    """The window index of each production row, computed from the datetimes themselves."""
    return np.array([(m - ORIGIN) // WEEK for m in production[2]])


@pytest.fixture(scope="session")
def schedule():
    return WindowSchedule(origin=ORIGIN, length=WEEK, accept_until=ORIGIN + 8 * WEEK)


def window_of_rows(reference, frame, start="2024-01-01T00:00:00Z", end="2024-01-08T00:00:00Z"):
    """Aggregate the rows of FRAME directly (no file, no schedule) into one window."""
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    rows = parse_rows(reference, {c: table.column(c) for c in table.column_names}, table.num_rows, declared=True)
    return WindowAggregate.empty(reference, start, end).add(rows)


# --- the Django app: a production release with its monitoring plan ----------------------------

WHY = "Reviewed the gate evidence and the lineage."


@pytest.fixture
def monitoring_people(make_user, unit):
    from governance.rules import roles

    return {
        "requester": make_user(roles.DATA_SCIENTIST, [unit]),
        "validator": make_user(roles.MODEL_RISK_VALIDATOR, [unit]),
        "officer": make_user(roles.COMPLIANCE_OFFICER, [unit]),
        "pipeline": make_user(roles.PIPELINE, [unit]),
        "admin": make_user(superuser=True),
    }


def approve_to_production(model_version, people):
    """Request, gate (recorded) and approve MODEL_VERSION to production; return the release."""
    from django.test import TestCase

    from governance.rules import roles
    from governance.services.releases import release_decide, release_request
    from tests.gate_verdicts import record_gate_verdict

    release = record_gate_verdict(
        release_request(model_version=model_version, environment="production", actor=people["requester"]))
    with TestCase.captureOnCommitCallbacks(execute=True):
        release_decide(release=release, actor=people["validator"], role=roles.MODEL_RISK_VALIDATOR,
                       decision="approve", justification=WHY)
    with TestCase.captureOnCommitCallbacks(execute=True):
        release = release_decide(release=release, actor=people["officer"], role=roles.COMPLIANCE_OFFICER,
                                 decision="approve", justification=WHY)
    release.refresh_from_db()
    return release


PLAN_ORIGIN = datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def production_plan(credit_model_version, monitoring_people):
    """The monitoring plan made on approval of the credit model to production, its windows
    starting at PLAN_ORIGIN (a second plan version)."""
    from governance.monitoring.models import MonitoringPlan
    from governance.monitoring.services import plan_version_publish

    release = approve_to_production(credit_model_version, monitoring_people)
    plan = MonitoringPlan.objects.get(model_version=credit_model_version)
    plan_version_publish(plan=plan, changes={"origin": "2024-01-01T00:00:00Z"}, actor=monitoring_people["admin"])
    assert plan.release == release
    return plan


def scored_rows(model_version, n, *, start, seed=0, shift=1.0, step=timedelta(minutes=10)):
    """N production rows resampled from the German credit data (ids, timestamps from START, the
    model's score), credit_amount multiplied by SHIFT; also the true labels by prediction id."""
    from governance.demo.credit import LABEL, SUBJECT_COLUMN, german_credit_frame
    from governance.storage import artifacts

    df = german_credit_frame()
    rng = np.random.default_rng(seed)
    rows = df.iloc[rng.integers(0, len(df), n)].reset_index(drop=True)
    labels = rows[LABEL].to_numpy()
    rows = rows.drop(columns=[LABEL, SUBJECT_COLUMN])
    rows["credit_amount"] = (rows["credit_amount"] * shift).round().astype(int)
    model = artifacts.load_model(model_version)
    rows["score"] = model.predict_proba(rows[list(model.feature_names_in_)])[:, 1]
    rows["timestamp"] = [(start + i * step).isoformat() for i in range(n)]
    rows["prediction_id"] = [f"p-{seed}-{i:06d}" for i in range(n)]
    return rows, dict(zip(rows["prediction_id"], (int(x) for x in labels)))
