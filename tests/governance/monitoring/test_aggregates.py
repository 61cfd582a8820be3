"""Reference profiles and window aggregates against numpy and pandas computed on the same rows;
merging; the strict check of pre-aggregated windows."""

import copy
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from audit.canonical import canonical_json
from governance.monitoring.aggregates import (
    UNSEEN_NAME_LIMIT,
    UNSEEN_NAMES_KEPT,
    GroupAttribute,
    ProfileSpec,
    ReferenceProfile,
    WindowAggregate,
    bin_counts,
)
from governance.monitoring.errors import AggregateShapeError, ColumnError

from .conftest import CATEGORICAL, NUMERIC, window_of_rows


# --- the reference profile -------------------------------------------------------------------

def test_profile_is_plain_json_deterministic_and_digested(reference_frame, spec, reference):
    text = json.dumps(reference.to_json(), allow_nan=False)  # no NaN, no infinity
    again = ReferenceProfile.from_frame(reference_frame.sample(frac=1.0, random_state=3), spec)
    assert json.dumps(again.to_json(), allow_nan=False) == text  # row order does not matter
    assert reference.digest == hashlib.sha256(canonical_json(json.loads(text))).hexdigest()
    assert ReferenceProfile.from_json(json.loads(text)).digest == reference.digest


@pytest.mark.parametrize("column", NUMERIC + ("score",))
def test_numeric_profile_equals_numpy(reference_frame, reference, column):
    x = reference_frame[column].to_numpy(float)
    sec = reference.numeric_section(column)
    assert sec["n"] == len(x) and sec["missing"] == 0
    assert sec["min"] == x.min() and sec["max"] == x.max()
    assert sec["mean"] == pytest.approx(x.mean(), rel=1e-12) and sec["std"] == pytest.approx(x.std(), rel=1e-12)
    assert sec["quantiles"] == list(np.quantile(x, np.arange(101) / 100, method="inverted_cdf"))
    edges = np.array(sec["edges"])
    # counts on the window bins, by np.searchsorted of every value (an independent method)
    direct = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
    assert sec["counts"] == direct.tolist()
    assert sec["at_edges"] == [int((x == e).sum()) for e in edges]
    # decile edges are the reference's deciles (the top one just above the maximum)
    deciles = np.array([edges[i] for i in sec["decile_edges"]])
    expected = np.unique(np.quantile(x, np.arange(11) / 10, method="inverted_cdf"))[:-1]
    assert deciles[:-1].tolist() == expected.tolist() and deciles[-1] == np.nextafter(x.max(), np.inf)
    hist, _ = np.histogram(x, bins=deciles)
    start, _ = sec["grid_edges"]
    assert start == sec["decile_edges"][0]
    assert hist.sum() == len(x)


@pytest.mark.parametrize("column", CATEGORICAL)
def test_categorical_profile_equals_pandas(reference_frame, reference, column):
    sec = reference.doc["categorical"][column]
    counts = reference_frame[column].astype(str).value_counts()
    assert dict(zip(sec["categories"], sec["counts"])) == counts.to_dict()
    assert sec["categories"] == sorted(sec["categories"])
    assert sec["singletons"] == int((counts == 1).sum())


def test_group_cells_equal_a_crosstab(reference_frame, reference):
    cells = np.array(reference.doc["groups"]["counts"])  # (sex x age band, predicted, label state)
    frame = reference_frame.assign(
        band=pd.cut(reference_frame["age"], [-np.inf, 25, 60, np.inf], right=False, labels=["<25", "25-<60", ">=60"]),
        predicted=(reference_frame["score"] >= 0.5).astype(int),
    )
    table = frame.groupby(["sex", "band", "predicted", "risk"], observed=True).size()
    sexes, bands = reference.group_labels
    assert sexes == ["female", "male", "(missing)", "(unseen)"]
    assert bands == ["<25", "25-<60", ">=60", "(missing)", "(unseen)"]
    for (sex, band, predicted, risk), n in table.items():
        cell = sexes.index(sex) * len(bands) + bands.index(band)
        assert cells[cell, predicted, 1 + risk] == n
    assert cells.sum() == len(frame) and cells[:, :, 0].sum() == 0


def test_profile_rejects_what_it_cannot_use(reference_frame, spec):
    with pytest.raises(ColumnError, match="'duration'.*absent"):
        ReferenceProfile.from_frame(reference_frame.drop(columns=["duration"]), spec)
    broken = reference_frame.copy()
    broken["age"] = broken["age"].astype(object)
    broken.loc[3, "age"] = "Sentinel-Value-77"
    with pytest.raises(ColumnError) as err:
        ReferenceProfile.from_frame(broken, spec)
    assert "Sentinel" not in str(err.value)
    with pytest.raises(ValueError, match="label"):
        ProfileSpec(numeric=("age",), score="score", threshold=0.5)
    with pytest.raises(ValueError, match="multiple of 10"):
        ProfileSpec(numeric=("age",), score="score", threshold=0.5, label="risk", grid=55)


# --- counting --------------------------------------------------------------------------------

@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                          st.sampled_from([0.0, 1.0, 2.5, -3.0])), max_size=200),
       st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20, unique=True))
def test_bin_counts_equal_searchsorted_per_value(values, edges):
    x = np.array(values, dtype=float)
    e = np.array(sorted(edges))
    counts, at_edges, infinite, nans = bin_counts(e, x)
    finite = x[np.isfinite(x)]
    assert counts.tolist() == np.bincount(np.searchsorted(e, finite, side="right"), minlength=len(e) + 1).tolist()
    assert at_edges.tolist() == [int((finite == v).sum()) for v in e]
    assert infinite == int(np.isinf(x).sum()) and nans == int(np.isnan(x).sum())


def test_window_counts_missing_type_violations_and_unseen(reference, production_frame):
    frame = production_frame.head(300).copy()
    frame["age"] = frame["age"].astype(object)
    frame.loc[0:9, "age"] = None                 # missing
    frame.loc[10:14, "age"] = "not-a-number"      # type violations
    frame.loc[15:16, "age"] = float("inf")        # not finite: type violations
    frame.loc[17, "age"] = "  42 "                # number text with white space: a value
    frame.loc[0:3, "purpose"] = "crypto"          # unseen, named
    frame.loc[4:5, "purpose"] = "x" * (UNSEEN_NAME_LIMIT + 1)  # unseen, too long to name
    frame.loc[6:8, "purpose"] = None
    frame.loc[0:2, "sex"] = "Sentinel-Person"     # a group attribute: unseen, never named
    window = window_of_rows(reference, frame.astype({"age": str}).replace({"None": None}))
    age = window.numeric["age"]
    assert age["missing"] == 10 and age["type_violations"] == 7
    assert age["bins"].sum() == 300 - 17
    purpose = window.categorical["purpose"]
    assert purpose["unseen"] == {"crypto": 4} and purpose["unseen_other"] == 2 and purpose["missing"] == 3
    sex = window.categorical["sex"]
    assert sex["unseen"] == {} and sex["unseen_other"] == 3
    assert "Sentinel" not in json.dumps(window.to_json())


def test_window_on_the_reference_rows_reproduces_the_reference_counts(reference, reference_frame):
    window = window_of_rows(reference, reference_frame)
    for name in reference.numeric_columns():
        sec = reference.numeric_section(name)
        assert window.numeric[name]["bins"].tolist() == sec["counts"]
        assert window.numeric[name]["at_edges"].tolist() == sec["at_edges"]
    ref_cells = np.array(reference.doc["groups"]["counts"])
    assert (window.cells[:, :, 0] == ref_cells.sum(axis=2)).all()


# --- merging ---------------------------------------------------------------------------------

def _with_many_unseen(frame, seed):
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    names = [f"new-purpose-{i:02d}" for i in range(3 * UNSEEN_NAMES_KEPT)]
    picked = rng.choice(len(frame), size=len(frame) // 3, replace=False)
    frame.loc[picked, "purpose"] = rng.choice(names, size=len(picked))
    return frame


def test_merge_of_two_halves_equals_the_whole(reference, production_frame):
    frame = _with_many_unseen(production_frame, 1)
    rng = np.random.default_rng(7)
    mask = rng.random(len(frame)) < 0.4
    a = window_of_rows(reference, frame[mask])
    b = window_of_rows(reference, frame[~mask])
    whole = window_of_rows(reference, frame)
    assert a.merge(b).to_json() == whole.to_json()
    assert b.merge(a) == whole
    purpose = whole.categorical["purpose"]
    assert len(purpose["unseen"]) == UNSEEN_NAMES_KEPT
    # the names kept are those with the smallest SHA-256, with their exact counts
    counts = frame.loc[~frame["purpose"].isin(reference.doc["categorical"]["purpose"]["categories"]), "purpose"].value_counts()
    smallest = sorted(counts.index, key=lambda s: hashlib.sha256(s.encode()).digest())[:UNSEEN_NAMES_KEPT]
    assert purpose["unseen"] == {k: int(counts[k]) for k in smallest}
    assert purpose["unseen_other"] == int(counts.sum()) - sum(purpose["unseen"].values())


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_merge_is_associative_and_commutative(reference, production_frame, data):
    frame = _with_many_unseen(production_frame.head(900), data.draw(st.integers(0, 10**6)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(frame)), min_size=2, max_size=2)))
    order = data.draw(st.permutations(range(len(frame))))
    shuffled = frame.iloc[list(order)]
    parts = [shuffled.iloc[: cuts[0]], shuffled.iloc[cuts[0]: cuts[1]], shuffled.iloc[cuts[1]:]]
    a, b, c = (window_of_rows(reference, p) for p in parts)
    whole = window_of_rows(reference, frame)
    assert a.merge(b).merge(c) == a.merge(b.merge(c)) == c.merge(a).merge(b) == whole


def test_merge_refuses_other_windows_and_references(reference, reference_frame, spec, production_frame):
    a = window_of_rows(reference, production_frame.head(10))
    b = window_of_rows(reference, production_frame.head(10), start="2024-01-08T00:00:00Z", end="2024-01-15T00:00:00Z")
    with pytest.raises(AggregateShapeError, match="same window"):
        a.merge(b)
    other = ReferenceProfile.from_frame(reference_frame.head(500), spec)
    with pytest.raises(AggregateShapeError, match="same reference"):
        a.merge(window_of_rows(other, production_frame.head(10)))


# --- pre-aggregated windows ------------------------------------------------------------------

@pytest.fixture(scope="module")
def submitted(reference, production_frame):
    frame = production_frame.head(400).copy()
    frame.loc[0:4, "purpose"] = "brand-new-purpose"
    return window_of_rows(reference, frame).to_json()


def test_a_pre_aggregated_window_round_trips(reference, submitted):
    window = WindowAggregate.from_json(json.loads(json.dumps(submitted)), reference)
    assert window.to_json() == submitted


def _broken(doc, change):
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


@pytest.mark.parametrize("change, path", [
    (lambda d: d.update(format="custos.monitoring.window/0"), "format"),
    (lambda d: d.update(reference="0" * 64), "reference"),
    (lambda d: d.pop("cells"), "window"),
    (lambda d: d.update(extra=1), "window"),
    (lambda d: d.update(start="2024-01-01T00:00:00"), "start"),
    (lambda d: d.update(end="2023-12-01T00:00:00Z"), "end"),
    (lambda d: d["numeric"]["age"]["bins"].pop(), "numeric.age.bins"),
    (lambda d: d["numeric"]["age"]["bins"].__setitem__(50, -1), "numeric.age.bins"),
    (lambda d: d["numeric"]["age"]["bins"].__setitem__(50, True), "numeric.age.bins"),
    (lambda d: d["numeric"]["age"]["bins"].__setitem__(50, 2.0), "numeric.age.bins"),
    (lambda d: d["numeric"]["age"].update(missing=d["numeric"]["age"]["missing"] + 1), "numeric.age"),
    (lambda d: d["numeric"]["age"]["at_edges"].__setitem__(0, 10**6), "numeric.age.at_edges"),
    (lambda d: d["numeric"].pop("age"), "numeric"),
    (lambda d: d.update(score=None), "score"),
    (lambda d: d["categorical"]["purpose"]["counts"].pop("car"), "categorical.purpose.counts"),
    (lambda d: d["categorical"]["purpose"]["unseen"].update({"car": 1}), "categorical.purpose.unseen"),
    (lambda d: d["categorical"]["purpose"]["unseen"].update({f"n{i}": 0 for i in range(30)}), "categorical.purpose.unseen"),
    (lambda d: d["categorical"]["sex"]["unseen"].update({"Sentinel-Person": 0}), "categorical.sex.unseen"),
    (lambda d: d["categorical"]["purpose"].update(missing=0, unseen_other=7), "categorical.purpose"),
    (lambda d: d["cells"].pop(), "cells"),
    (lambda d: d["cells"][0][0].append(0), "cells"),
    (lambda d: d["cells"][0][0].__setitem__(0, d["cells"][0][0][0] + 1), "cells"),
])
def test_a_pre_aggregated_window_that_does_not_fit_is_refused(reference, submitted, change, path):
    with pytest.raises(AggregateShapeError) as err:
        WindowAggregate.from_json(_broken(submitted, change), reference)
    assert err.value.path == path
    message = str(err.value)
    assert "Sentinel" not in message and "brand-new-purpose" not in message


def test_group_attribute_labels_follow_the_gate(reference_frame):
    spec = ProfileSpec(numeric=("duration",), score="score", threshold=0.5, label="risk",
                       groups=(GroupAttribute("age", (30, 45, 60)),))
    profile = ReferenceProfile.from_frame(reference_frame, spec)
    assert profile.group_labels[0][:-2] == ["<30", "30-<45", "45-<60", ">=60"]
    from governance.gates.fairness import sensitive_values

    gate = sensitive_values(reference_frame, {"column": "age", "cut_points": [30, 45, 60]})
    cells = np.array(profile.doc["groups"]["counts"]).sum(axis=(1, 2))
    assert dict(zip(profile.group_labels[0], cells.tolist())) == {
        **{k: 0 for k in profile.group_labels[0]}, **gate.value_counts().to_dict()}
