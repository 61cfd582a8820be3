"""Reference profiles and window aggregates: everything monitoring keeps instead of rows.

A **reference profile** is computed once from the reference rows (the gate's evaluation
snapshot or the training snapshot), so the reference never needs its rows again:

- per numeric feature (and the score): a grid of ``grid`` + 1 quantiles (percentiles by
  default; Hyndman & Fan type 1, so each is an observed value), the distinct grid values
  plus ``nextafter(max, +inf)`` as bin edges (every bin half-open, ``[left, right)``, the
  maximum inside the range), the reference deciles (every tenth grid quantile: a subset of
  the grid edges), min, max, mean, standard deviation, missing count, n, and the reference's
  counts on the *window edges*: the grid edges extended on both sides by
  ``extension_levels`` geometric steps (``min - s*2**j`` and ``top + s*2**j``, ``s`` = the
  mean grid-bin width), so values outside the reference range still land in bins whose width
  bounds how far out they are; with the counts of values exactly at each edge;
- per categorical feature: the sorted categories with their counts, the missing count and the
  number of categories seen exactly once (for the Good-Turing estimate of unseen categories);
- the prediction rule (a class column or a score threshold), the label rule, and per fairness
  group cell (one label per sensitive attribute: the reference's values or bands, plus
  ``(missing)`` and ``(unseen)``) x predicted class x label, the counts.

A **window aggregate** holds, on the reference's bins, only counts: per numeric column the bin
counts (under- and overflow included) and the counts of values equal to each edge, missing values and type violations (unparsable or not
finite); per categorical column the counts of the reference's categories, the unseen
categories (by name for at most ``UNSEEN_NAMES_KEPT`` names of at most ``UNSEEN_NAME_LIMIT``
characters, the rest counted only; never by name for personal columns), missing values and
type violations; per group cell x predicted class x label state (unknown until the label
arrives) the counts. No row value is kept: no id, no minimum or maximum, no sum.

Merging adds counts, and the unseen names are the ``UNSEEN_NAMES_KEPT`` names with the
smallest SHA-256 among all unseen names: a name kept at the end is never evicted on the way,
so ``merge(a, b)`` equals the aggregate of both batches exactly, in any order and grouping.

Both forms are plain JSON (ints, floats, strings, lists, dicts; None for an undefined float)
and deterministic, with a SHA-256 digest over their RFC 8785 canonical bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit.canonical import canonical_json

from .errors import AggregateShapeError, ColumnError, LabelError

REFERENCE_FORMAT = "custos.monitoring.reference/1"
WINDOW_FORMAT = "custos.monitoring.window/1"
MISSING = "(missing)"
UNSEEN = "(unseen)"
GRID_QUANTILES = 100
EXTENSION_LEVELS = 40
UNSEEN_NAMES_KEPT = 20
UNSEEN_NAME_LIMIT = 64
LABEL_STATES = ("unknown", "negative", "positive")
WASSERSTEIN_NULL_SIMULATIONS = 2000
QUANTILE_METHOD = "inverted_cdf (Hyndman & Fan 1996 type 1: observed values)"

# A number as text: what Arrow's string-to-double cast accepts, after trimming white space.
# Matching first (instead of trying the cast) makes validity a property of each value, so a
# value counts the same whatever else is in its chunk.
_NUMBER_TEXT = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$|^[+-]?(?:inf|infinity|nan)$"


# --- the profile's specification -------------------------------------------------------------

@dataclass(frozen=True)
class GroupAttribute:
    """A sensitive attribute that fairness is judged by: a column, optionally cut into bands
    ``[-inf, c0), [c0, c1), ..., [ck, inf)`` labelled as the release gate labels them."""

    column: str
    cut_points: tuple[float, ...] = ()

    def to_json(self) -> dict:
        return {"column": self.column, "cut_points": [float(c) for c in self.cut_points]}


@dataclass(frozen=True)
class ProfileSpec:
    """Which reference columns play which role. The prediction is the ``prediction`` column
    (``positive_prediction`` = predicted positive) or, without one, ``score >= threshold``.
    Columns in ``personal`` (and every group attribute) never have unseen values kept by name."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    score: str | None = None
    threshold: float | None = None
    prediction: str | None = None
    positive_prediction: object = 1
    label: str | None = None
    positive_label: object = 1
    groups: tuple[GroupAttribute, ...] = ()
    personal: tuple[str, ...] = ()
    grid: int = GRID_QUANTILES
    extension_levels: int = EXTENSION_LEVELS
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "numeric", tuple(self.numeric))
        object.__setattr__(self, "categorical", tuple(self.categorical))
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "personal", tuple(self.personal))
        names = list(self.numeric) + list(self.categorical)
        if len(set(names)) != len(names):
            raise ValueError("a feature is declared more than once")
        if self.prediction is None and (self.score is None or self.threshold is None):
            raise ValueError("give a prediction column, or a score column and a threshold")
        if self.label is None:
            raise ValueError("the reference needs its label column")
        if self.grid < 10 or self.grid % 10:
            raise ValueError("grid must be a multiple of 10 (the deciles are every tenth quantile)")
        for g in self.groups:
            if list(g.cut_points) != sorted(set(g.cut_points)):
                raise ValueError(f"cut points of {g.column!r} must be increasing")

    def to_json(self) -> dict:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "score": self.score,
            "threshold": None if self.threshold is None else float(self.threshold),
            "prediction": self.prediction,
            "positive_prediction": category_text(self.positive_prediction),
            "label": self.label,
            "positive_label": category_text(self.positive_label),
            "groups": [g.to_json() for g in self.groups],
            "personal": list(self.personal),
            "grid": self.grid,
            "extension_levels": self.extension_levels,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, doc: dict) -> "ProfileSpec":
        return cls(
            numeric=tuple(doc["numeric"]), categorical=tuple(doc["categorical"]), score=doc["score"],
            threshold=doc["threshold"], prediction=doc["prediction"],
            positive_prediction=doc["positive_prediction"], label=doc["label"],
            positive_label=doc["positive_label"],
            groups=tuple(GroupAttribute(g["column"], tuple(g["cut_points"])) for g in doc["groups"]),
            personal=tuple(doc["personal"]), grid=doc["grid"], extension_levels=doc["extension_levels"],
            seed=doc["seed"],
        )


# --- values of one column, canonical ---------------------------------------------------------

def category_text(value) -> str:
    """Return the canonical text of one category value (as a column of it would be read)."""
    if isinstance(value, str):
        return value
    return pc.cast(pa.array([value]), pa.string())[0].as_py()


def decoded(array):
    """ARRAY as one plain Arrow array: chunks combined, dictionaries decoded, large strings
    as strings."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        array = array.cast(pa.string())
    return array


def numeric_values(array, *, column: str, declared: bool, invalid=None):
    """Return (float64 values with NaN where missing or invalid, invalid mask or None).

    Numbers are taken as they are; text is a number if it matches ``_NUMBER_TEXT`` (NaN text
    is missing); anything else is invalid (a type violation). A column of a type that can
    hold no number is an error when the file declares its types (Parquet, Arrow, a data
    frame) and a type violation per value when it does not (JSON lines)."""
    array = decoded(array)
    t = array.type
    n = len(array)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64), invalid
    if pa.types.is_null(t):
        return np.full(n, np.nan), invalid
    if pa.types.is_string(t):
        trimmed = pc.utf8_trim_whitespace(array)
        ok = pc.match_substring_regex(trimmed, _NUMBER_TEXT, ignore_case=True)
        bad = pc.and_(pc.is_valid(array), pc.invert(pc.fill_null(ok, False)))
        bad = bad.to_numpy(zero_copy_only=False)
        values = pc.cast(pc.if_else(ok, trimmed, pa.scalar(None, pa.string())), pa.float64())
        values = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        if bad.any():
            invalid = bad if invalid is None else (invalid | bad)
        return values, invalid
    if declared:
        raise ColumnError(column, f"is of type {t}", "numbers (integer, floating point or number text)")
    bad = pc.is_valid(array).to_numpy(zero_copy_only=False)
    return np.full(n, np.nan), (bad if invalid is None else invalid | bad)


def category_values(array, *, column: str, declared: bool, invalid=None):
    """Return (string array with null where missing or invalid, invalid mask or None).

    Text is taken as it is, integers and booleans as Arrow writes them, floating point values
    likewise (an integral float as an integer: 2.0 is "2"; NaN is missing)."""
    array = decoded(array)
    t = array.type
    n = len(array)
    if pa.types.is_string(t):
        return array, invalid
    if pa.types.is_null(t):
        return pa.nulls(n, pa.string()), invalid
    if pa.types.is_floating(t):
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, t), array)
        return pc.cast(array, pa.string()), invalid
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
        return pc.cast(array, pa.string()), invalid
    if declared:
        raise ColumnError(column, f"is of type {t}", "categories (text, integers or booleans)")
    bad = pc.is_valid(array).to_numpy(zero_copy_only=False)
    return pa.nulls(n, pa.string()), (bad if invalid is None else invalid | bad)


def band_labels(cut_points) -> list[str]:
    """Labels of the bands cut at CUT_POINTS, as the release gate writes them."""
    cuts = list(cut_points)
    labels = [f"<{cuts[0]:g}"]
    labels += [f"{a:g}-<{b:g}" for a, b in zip(cuts, cuts[1:])]
    labels.append(f">={cuts[-1]:g}")
    return labels


# --- parsed rows: a chunk's columns in the form the counting needs ---------------------------

@dataclass
class ParsedRows:
    """The columns of some rows, canonical: numeric values (NaN = missing or invalid) with their
    invalid masks, category codes (-1 missing, -2 unseen, -3 invalid) with the text of unseen
    values, the group cell, the predicted class and (reference only) the label."""

    n: int
    numeric: dict = field(default_factory=dict)      # name -> (values, invalid mask | None)
    categorical: dict = field(default_factory=dict)  # name -> (codes int32, text pa.Array)
    cells: np.ndarray | None = None
    predicted: np.ndarray | None = None
    labels: np.ndarray | None = None

    def take(self, index: np.ndarray) -> "ParsedRows":
        idx = pa.array(index)
        return ParsedRows(
            n=len(index),
            numeric={k: (v[index], None if m is None else m[index]) for k, (v, m) in self.numeric.items()},
            categorical={k: (c[index], t.take(idx)) for k, (c, t) in self.categorical.items()},
            cells=self.cells[index], predicted=self.predicted[index],
            labels=None if self.labels is None else self.labels[index],
        )

    def slice(self, start: int, stop: int) -> "ParsedRows":
        return ParsedRows(
            n=stop - start,
            numeric={k: (v[start:stop], None if m is None else m[start:stop]) for k, (v, m) in self.numeric.items()},
            categorical={k: (c[start:stop], t.slice(start, stop - start)) for k, (c, t) in self.categorical.items()},
            cells=self.cells[start:stop], predicted=self.predicted[start:stop],
            labels=None if self.labels is None else self.labels[start:stop],
        )


def _column(columns: Mapping, name: str, n: int):
    """(array, invalid mask) of NAME in COLUMNS; a bare array has no invalid mask."""
    value = columns.get(name)
    if value is None:
        return None, None
    if isinstance(value, tuple):
        return value
    return value, None


def parse_rows(reference: "ReferenceProfile", columns: Mapping, n: int, *, declared: bool,
               with_labels: bool = False) -> ParsedRows:
    """Parse the columns (name -> Arrow array, or (array, invalid mask)) of N rows against
    REFERENCE. Features and the prediction (or score) must be present; a group attribute
    that is absent puts every row in its ``(missing)`` group."""
    spec = reference.spec
    rows = ParsedRows(n=n)
    for name in reference.numeric_columns():
        array, invalid = _column(columns, name, n)
        if array is None:
            raise ColumnError(name, "is absent", "a numeric column of the reference profile")
        rows.numeric[name] = numeric_values(array, column=name, declared=declared, invalid=invalid)
    for name in spec.categorical:
        array, invalid = _column(columns, name, n)
        if array is None:
            raise ColumnError(name, "is absent", "a categorical column of the reference profile")
        text, invalid = category_values(array, column=name, declared=declared, invalid=invalid)
        index = reference.category_index[name]
        codes = pc.fill_null(pc.index_in(text, value_set=index), -2).to_numpy(zero_copy_only=False)
        codes = codes.astype(np.int32, copy=True)
        codes[pc.is_null(text).to_numpy(zero_copy_only=False)] = -1
        if invalid is not None:
            codes[invalid] = -3
        rows.categorical[name] = (codes, text)
    rows.cells = reference.group_cells(columns, n, declared=declared)
    rows.predicted = reference.predicted_class(columns, rows, declared=declared)
    if with_labels:
        rows.labels = reference.label_values(columns, declared=declared)
    return rows


# --- counting on bins ------------------------------------------------------------------------

def bin_counts(edges: np.ndarray, values: np.ndarray):
    """Counts of VALUES on the bins ``(-inf, e0), [e0, e1), ..., [ek, inf)``, the counts of
    values exactly equal to each edge (the point masses, which make the Wasserstein distance
    of a discrete feature exact), and the numbers of infinite and of NaN values.

    One sort (numpy's SIMD sort, as ``np.histogram`` uses) and a search of the edges in the
    sorted values: cheaper than searching every value in the edges."""
    s = np.sort(values)
    pos = np.searchsorted(s, edges, side="left")
    lo_inf = int(np.searchsorted(s, -np.inf, side="right"))
    below_inf = int(np.searchsorted(s, np.inf, side="left"))
    upto_inf = int(np.searchsorted(s, np.inf, side="right"))
    counts = np.empty(len(edges) + 1, dtype=np.int64)
    counts[0] = pos[0] - lo_inf
    counts[1:-1] = np.diff(pos)
    counts[-1] = below_inf - pos[-1]
    at_edges = np.searchsorted(s, edges, side="right") - pos
    return counts, at_edges.astype(np.int64), lo_inf + (upto_inf - below_inf), len(s) - upto_inf


def _bottom_names(names: dict, limit: int):
    """Keep the LIMIT names with the smallest SHA-256; return (kept, count of the others)."""
    if len(names) <= limit:
        return names, 0
    order = sorted(names, key=lambda s: hashlib.sha256(s.encode()).digest())
    kept = {k: names[k] for k in order[:limit]}
    return kept, sum(names[k] for k in order[limit:])


# --- the reference profile -------------------------------------------------------------------

def _finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _numeric_profile(values: np.ndarray, invalid, *, column: str, spec: ProfileSpec, rng) -> dict:
    if invalid is not None and invalid.any():
        raise ColumnError(column, "has values in the reference that are not numbers", "numbers only in the reference")
    finite = values[~np.isnan(values)]
    if not np.isfinite(finite).all():
        raise ColumnError(column, "has infinite values in the reference", "finite numbers in the reference")
    if len(finite) == 0:
        raise ColumnError(column, "has no values in the reference", "at least one number in the reference")
    lo, hi = float(finite.min()), float(finite.max())
    # Type 1 quantiles are observed values, so the grid edges sit on the values of a discrete
    # feature and its point masses are counted exactly at the edges (see ``bin_counts``).
    # k / grid is the double nearest each probability (linspace accumulates a rounding error,
    # which moves type 1 quantiles that fall exactly on a jump).
    quantiles = np.quantile(finite, np.arange(spec.grid + 1) / spec.grid, method="inverted_cdf")
    top = float(np.nextafter(hi, np.inf))
    grid = np.concatenate([np.unique(quantiles), [top]])
    tenths = np.unique(quantiles[:: spec.grid // 10])
    deciles = np.concatenate([tenths[:-1] if len(tenths) > 1 else tenths, [top]])
    step = (hi - lo) / spec.grid if hi > lo else max(1.0, abs(lo)) / spec.grid
    powers = step * np.power(2.0, np.arange(spec.extension_levels))
    lower, upper = lo - powers[::-1], top + powers
    edges = np.unique(np.concatenate([lower[np.isfinite(lower)], grid, upper[np.isfinite(upper)]]))
    counts, at_edges, _, _ = bin_counts(edges, finite)
    grid_start = int(np.searchsorted(edges, grid[0]))
    grid_stop = int(np.searchsorted(edges, grid[-1]))
    decile_index = np.searchsorted(edges, deciles)
    assert np.array_equal(edges[decile_index], deciles) and np.array_equal(edges[grid_start:grid_stop + 1], grid)
    std = float(np.std(finite))
    return {
        "n": int(len(finite)),
        "missing": int(len(values) - len(finite)),
        "min": lo,
        "max": hi,
        "mean": float(np.mean(finite)),
        "std": std,
        "quantiles": [float(q) for q in quantiles],
        "deciles": [float(q) for q in quantiles[:: spec.grid // 10]],
        "edges": [float(e) for e in edges],
        "grid_edges": [grid_start, grid_stop],
        "decile_edges": [int(i) for i in decile_index],
        "counts": [int(c) for c in counts],
        "at_edges": [int(c) for c in at_edges],
        "extension_step": float(step),
        "wasserstein_null_q95": _wasserstein_null_q95(edges, counts, grid_start, grid_stop, rng),
    }


def _wasserstein_null_q95(edges, counts, grid_start, grid_stop, rng) -> float:
    """The 95th percentile of the integral of |B(F(x))| dx, B a Brownian bridge and F the
    reference distribution (del Barrio, Giné & Matrán 1999): the limit of
    sqrt(n m / (n + m)) W1 between two samples of F. Simulated on the grid (trapezoids)."""
    n = counts.sum()
    cdf = np.concatenate([[0.0], np.cumsum(counts[1:-1]) / n])[grid_start:grid_stop + 1]
    widths = np.diff(edges[grid_start:grid_stop + 1])
    dt = np.diff(cdf)
    steps = rng.standard_normal((WASSERSTEIN_NULL_SIMULATIONS, len(dt))) * np.sqrt(dt)
    walk = np.concatenate([np.zeros((WASSERSTEIN_NULL_SIMULATIONS, 1)), np.cumsum(steps, axis=1)], axis=1)
    bridge = np.abs(walk - cdf * walk[:, -1:])
    integral = (widths * (bridge[:, 1:] + bridge[:, :-1]) / 2).sum(axis=1)
    return float(np.quantile(integral, 0.95))


def _binary_classes(array, column: str, positive, what: str) -> list:
    """[the other class or None, the positive class] of a reference column that must hold a
    binary WHAT (prediction or label) in every row."""
    text, _ = category_values(array, column=column, declared=True)
    if text.null_count:
        raise ColumnError(column, f"has rows without a {what} in the reference", f"a {what} in every reference row")
    positive = category_text(positive)
    others = sorted(set(text.to_pylist()) - {positive})
    if len(others) > 1:
        raise ColumnError(column, "has more than two classes", f"a binary {what}")
    return [others[0] if others else None, positive]


def _as_table(frame):
    if isinstance(frame, pa.Table):
        return frame
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        raise ColumnError("(data frame)", "has a column of mixed types", "one type per column") from None


class ReferenceProfile:
    """A reference profile (see the module docstring). Build it with ``from_frame`` from the
    reference rows, or load a stored one with ``from_json``."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.spec = ProfileSpec.from_json(doc["spec"])
        self.digest = hashlib.sha256(canonical_json(doc)).hexdigest()
        self.edges = {k: np.array(v["edges"]) for k, v in self._numeric_sections()}
        self.category_index = {k: pa.array(v["categories"], pa.string()) for k, v in doc["categorical"].items()}
        self.group_labels = [a["labels"] for a in doc["groups"]["attributes"]]
        self.cell_shape = tuple(len(labels) for labels in self.group_labels)
        self.n_cells = int(np.prod(self.cell_shape)) if self.cell_shape else 1
        self._group_index = [pa.array(a["labels"][:-2], pa.string()) for a in doc["groups"]["attributes"]]
        self._personal = set(self.spec.personal) | {g.column for g in self.spec.groups}

    def _numeric_sections(self):
        yield from self.doc["numeric"].items()
        if self.doc["score"] is not None:
            yield self.spec.score, self.doc["score"]

    def numeric_columns(self) -> list[str]:
        """The numeric features, then the score column if the profile has one."""
        return [k for k, _ in self._numeric_sections()]

    def numeric_section(self, name: str) -> dict:
        return self.doc["score"] if name == self.spec.score and name not in self.doc["numeric"] else self.doc["numeric"][name]

    def keeps_unseen_names(self, column: str) -> bool:
        return column not in self._personal

    @property
    def rows(self) -> int:
        return self.doc["rows"]

    # --- building --------------------------------------------------------------------------

    @classmethod
    def from_frame(cls, frame, spec: ProfileSpec) -> "ReferenceProfile":
        """Profile the reference rows of FRAME (a pandas DataFrame or an Arrow table)."""
        table = _as_table(frame)
        needed = list(spec.numeric) + list(spec.categorical) + [spec.label]
        needed += [c for c in (spec.score, spec.prediction) if c] + [g.column for g in spec.groups]
        for name in needed:
            if name not in table.column_names:
                raise ColumnError(name, "is absent from the reference", "a column of the reference rows")
        columns = {name: table.column(name) for name in dict.fromkeys(needed)}
        n = table.num_rows
        rng = np.random.default_rng(spec.seed)
        numeric = {}
        for name in spec.numeric:
            values, invalid = numeric_values(columns[name], column=name, declared=True)
            numeric[name] = _numeric_profile(values, invalid, column=name, spec=spec, rng=rng)
        score = None
        if spec.score:
            values, invalid = numeric_values(columns[spec.score], column=spec.score, declared=True)
            score = _numeric_profile(values, invalid, column=spec.score, spec=spec, rng=rng)
        categorical = {}
        for name in spec.categorical:
            text, _ = category_values(columns[name], column=name, declared=True)
            counts = pc.value_counts(pc.drop_null(text)).to_pylist()
            counts = sorted((d["values"], d["counts"]) for d in counts)
            if not counts:
                raise ColumnError(name, "has no values in the reference", "at least one category in the reference")
            categorical[name] = {
                "n": int(sum(c for _, c in counts)),
                "missing": int(text.null_count),
                "categories": [k for k, _ in counts],
                "counts": [int(c) for _, c in counts],
                "singletons": int(sum(1 for _, c in counts if c == 1)),
            }
        attributes = []
        for g in spec.groups:
            if g.cut_points:
                labels = band_labels(g.cut_points)
            else:
                text, _ = category_values(columns[g.column], column=g.column, declared=True)
                labels = sorted(set(pc.drop_null(text).to_pylist()))
            if MISSING in labels or UNSEEN in labels:
                raise ColumnError(g.column, "has a value spelt like a reserved group label", "no value named (missing) or (unseen)")
            attributes.append({"column": g.column, "cut_points": [float(c) for c in g.cut_points],
                               "labels": labels + [MISSING, UNSEEN]})
        prediction_classes = None
        if spec.prediction:
            prediction_classes = _binary_classes(columns[spec.prediction], spec.prediction, spec.positive_prediction,
                                                 "prediction")
        label_classes = _binary_classes(columns[spec.label], spec.label, spec.positive_label, "label")
        doc = {
            "format": REFERENCE_FORMAT,
            "spec": spec.to_json(),
            "rows": int(n),
            "numeric": numeric,
            "score": score,
            "categorical": categorical,
            "prediction": {"classes": prediction_classes},
            "label": {"classes": label_classes},
            "groups": {"attributes": attributes, "counts": []},
            "quantile_method": QUANTILE_METHOD,
            "libraries": {"numpy": np.__version__, "pyarrow": pa.__version__},
        }
        profile = cls(doc)
        rows = parse_rows(profile, columns, n, declared=True, with_labels=True)
        cells = np.zeros((profile.n_cells, 2, 3), dtype=np.int64)
        np.add.at(cells, (rows.cells, rows.predicted.astype(np.int64), rows.labels.astype(np.int64) + 1), 1)
        doc["groups"]["counts"] = cells.tolist()
        return cls(doc)

    @classmethod
    def from_json(cls, doc: dict) -> "ReferenceProfile":
        """Load a stored profile; its format must be this module's."""
        if not isinstance(doc, dict) or doc.get("format") != REFERENCE_FORMAT:
            raise AggregateShapeError("format", f"a reference profile of format {REFERENCE_FORMAT}")
        return cls(doc)

    def to_json(self) -> dict:
        return self.doc

    # --- parsing production values against the profile -------------------------------------

    def group_cells(self, columns: Mapping, n: int, *, declared: bool) -> np.ndarray:
        """The group cell index of each row (mixed radix over the attributes' labels)."""
        cells = np.zeros(n, dtype=np.int64)
        for attribute, index, size in zip(self.doc["groups"]["attributes"], self._group_index, self.cell_shape):
            name = attribute["column"]
            missing_code, unseen_code = size - 2, size - 1
            array, invalid = _column(columns, name, n)
            if array is None:
                codes = np.full(n, missing_code, dtype=np.int64)
            elif attribute["cut_points"]:
                values, invalid = numeric_values(array, column=name, declared=declared, invalid=invalid)
                codes = np.searchsorted(np.array(attribute["cut_points"]), values, side="right").astype(np.int64)
                codes[np.isnan(values)] = missing_code
                if invalid is not None:
                    codes[invalid] = unseen_code
            else:
                text, invalid = category_values(array, column=name, declared=declared, invalid=invalid)
                codes = pc.fill_null(pc.index_in(text, value_set=index), unseen_code).to_numpy(zero_copy_only=False)
                codes = codes.astype(np.int64, copy=True)
                codes[pc.is_null(text).to_numpy(zero_copy_only=False)] = missing_code
                if invalid is not None:
                    codes[invalid] = unseen_code
            cells = cells * size + codes
        return cells

    def predicted_class(self, columns: Mapping, rows: ParsedRows, *, declared: bool) -> np.ndarray:
        """The predicted class (True = positive) of each row; every row must have one."""
        spec = self.spec
        if spec.prediction:
            array, invalid = _column(columns, spec.prediction, rows.n)
            if array is None:
                raise ColumnError(spec.prediction, "is absent", "the predicted class of every row")
            text, invalid = category_values(array, column=spec.prediction, declared=declared, invalid=invalid)
            negative, positive = self.doc["prediction"]["classes"]
            is_pos = pc.equal(text, positive)
            is_neg = pc.equal(text, negative) if negative is not None else pa.nulls(rows.n, pa.bool_())
            known = pc.or_(pc.fill_null(is_pos, False), pc.fill_null(is_neg, False)).to_numpy(zero_copy_only=False)
            if not known.all() or (invalid is not None and invalid.any()):
                raise ColumnError(spec.prediction, "has values that are not one of the reference's two predicted classes",
                                  "the predicted class of every row")
            return pc.fill_null(is_pos, False).to_numpy(zero_copy_only=False)
        values, invalid = rows.numeric[spec.score]
        if np.isnan(values).any() or not np.isfinite(values).all():
            raise ColumnError(spec.score, "has empty or unusable scores", "a finite number in every row")
        return values >= spec.threshold

    def label_values(self, columns: Mapping, *, declared: bool) -> np.ndarray:
        """The reference's labels (1 = positive, 0 = negative) as int8."""
        array, _ = _column(columns, self.spec.label, 0)
        text, _ = category_values(array, column=self.spec.label, declared=declared)
        return pc.equal(text, self.doc["label"]["classes"][1]).to_numpy(zero_copy_only=False).astype(np.int8)

    def label_code(self, value) -> int:
        """1 for the positive label, 0 for the other reference label; LabelError otherwise."""
        if value is None or isinstance(value, float) and math.isnan(value):
            raise LabelError("a label is empty; expected one of the reference's two labels")
        text = category_text(value)
        negative, positive = self.doc["label"]["classes"]
        if text == positive:
            return 1
        if negative is not None and text == negative:
            return 0
        raise LabelError("a label is not one of the reference's two labels")

    def cell_labels(self, cell: int) -> list[str]:
        """The group labels (one per attribute) of cell index CELL."""
        out = []
        for labels, size in zip(reversed(self.group_labels), reversed(self.cell_shape)):
            cell, code = divmod(cell, size)
            out.append(labels[code])
        return out[::-1]


# --- window aggregates -----------------------------------------------------------------------

class WindowAggregate:
    """The counts of one monitoring window on a reference profile's bins (module docstring).

    Build an empty one with ``empty``, add parsed rows with ``add``, combine with ``merge``;
    ``to_json`` / ``from_json`` (strict) move it through storage and the API."""

    def __init__(self, reference: ReferenceProfile, start: str, end: str):
        self.reference = reference
        self.start, self.end = start, end
        self.rows = 0
        self.numeric = {
            name: {"bins": np.zeros(len(reference.edges[name]) + 1, dtype=np.int64),
                   "at_edges": np.zeros(len(reference.edges[name]), dtype=np.int64), "missing": 0, "type_violations": 0}
            for name in reference.numeric_columns()
        }
        self.categorical = {
            name: {"counts": np.zeros(len(sec["categories"]), dtype=np.int64), "unseen": {}, "unseen_other": 0,
                   "missing": 0, "type_violations": 0}
            for name, sec in reference.doc["categorical"].items()
        }
        self.cells = np.zeros((reference.n_cells, 2, 3), dtype=np.int64)

    @classmethod
    def empty(cls, reference: ReferenceProfile, start: str, end: str) -> "WindowAggregate":
        return cls(reference, start, end)

    def add(self, rows: ParsedRows) -> "WindowAggregate":
        """Count ROWS (parsed against this window's reference) into this window, in place."""
        self.rows += rows.n
        for name, (values, invalid) in rows.numeric.items():
            acc = self.numeric[name]
            counts, at_edges, infinite, nans = bin_counts(self.reference.edges[name], values)
            bad = 0 if invalid is None else int(np.count_nonzero(invalid))
            acc["bins"] += counts
            acc["at_edges"] += at_edges
            acc["missing"] += nans - bad
            acc["type_violations"] += bad + infinite
        for name, (codes, text) in rows.categorical.items():
            acc = self.categorical[name]
            k = len(acc["counts"])
            tally = np.bincount(codes + 3, minlength=k + 3)
            acc["counts"] += tally[3:]
            acc["missing"] += int(tally[2])
            acc["type_violations"] += int(tally[0])
            if tally[1]:
                self._add_unseen(name, codes, text, int(tally[1]))
        flat = np.bincount(rows.cells * 2 + rows.predicted, minlength=self.reference.n_cells * 2)
        self.cells[:, :, 0] += flat.reshape(-1, 2)
        return self

    def _add_unseen(self, name, codes, text, count):
        acc = self.categorical[name]
        if not self.reference.keeps_unseen_names(name):
            acc["unseen_other"] += count
            return
        unseen = pc.filter(text, pa.array(codes == -2))
        names = dict(acc["unseen"])
        for d in pc.value_counts(unseen).to_pylist():
            value, c = d["values"], d["counts"]
            if len(value) > UNSEEN_NAME_LIMIT:
                acc["unseen_other"] += c
            else:
                names[value] = names.get(value, 0) + c
        acc["unseen"], evicted = _bottom_names(names, UNSEEN_NAMES_KEPT)
        acc["unseen_other"] += evicted

    def merge(self, other: "WindowAggregate") -> "WindowAggregate":
        """Return a new window with the counts of both; both must be the same window of the
        same reference."""
        if other.reference.digest != self.reference.digest:
            raise AggregateShapeError("reference", "windows of the same reference profile")
        if (other.start, other.end) != (self.start, self.end):
            raise AggregateShapeError("start", "the same window (start and end) on both sides")
        out = WindowAggregate(self.reference, self.start, self.end)
        out.rows = self.rows + other.rows
        for name in out.numeric:
            a, b = self.numeric[name], other.numeric[name]
            out.numeric[name] = {k: a[k] + b[k] for k in a}
        for name in out.categorical:
            a, b = self.categorical[name], other.categorical[name]
            names = dict(a["unseen"])
            for k, c in b["unseen"].items():
                names[k] = names.get(k, 0) + c
            kept, evicted = _bottom_names(names, UNSEEN_NAMES_KEPT)
            out.categorical[name] = {
                "counts": a["counts"] + b["counts"], "unseen": kept,
                "unseen_other": a["unseen_other"] + b["unseen_other"] + evicted,
                "missing": a["missing"] + b["missing"], "type_violations": a["type_violations"] + b["type_violations"],
            }
        out.cells = self.cells + other.cells
        return out

    def copy(self) -> "WindowAggregate":
        return WindowAggregate.from_json(self.to_json(), self.reference)

    # --- JSON ------------------------------------------------------------------------------

    def to_json(self) -> dict:
        ref = self.reference
        numeric = {
            name: {"bins": [int(c) for c in acc["bins"]], "at_edges": [int(c) for c in acc["at_edges"]],
                   "missing": int(acc["missing"]),
                   "type_violations": int(acc["type_violations"])}
            for name, acc in self.numeric.items()
        }
        score = numeric.pop(ref.spec.score) if ref.doc["score"] is not None else None
        categorical = {
            name: {
                "counts": dict(zip(ref.doc["categorical"][name]["categories"], (int(c) for c in acc["counts"]))),
                "unseen": {k: int(v) for k, v in sorted(acc["unseen"].items())},
                "unseen_other": int(acc["unseen_other"]),
                "missing": int(acc["missing"]),
                "type_violations": int(acc["type_violations"]),
            }
            for name, acc in self.categorical.items()
        }
        return {
            "format": WINDOW_FORMAT,
            "reference": ref.digest,
            "start": self.start,
            "end": self.end,
            "rows": int(self.rows),
            "numeric": numeric,
            "score": score,
            "categorical": categorical,
            "cells": self.cells.tolist(),
        }

    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.to_json())).hexdigest()

    def __eq__(self, other):
        return isinstance(other, WindowAggregate) and self.to_json() == other.to_json()

    def __repr__(self):
        return f"WindowAggregate({self.start}..{self.end}, rows={self.rows})"

    @classmethod
    def from_json(cls, doc, reference: ReferenceProfile) -> "WindowAggregate":
        """Load a window aggregate (a stored one, or one aggregated elsewhere) and check its
        shape strictly against REFERENCE: every field present and no other, counts that are
        non-negative integers on exactly the reference's bins and categories, column totals
        equal to the window's rows. Raises AggregateShapeError naming the field."""
        _keys(doc, "window", {"format", "reference", "start", "end", "rows", "numeric", "score", "categorical", "cells"})
        if doc["format"] != WINDOW_FORMAT:
            raise AggregateShapeError("format", f"{WINDOW_FORMAT!r}")
        if doc["reference"] != reference.digest:
            raise AggregateShapeError("reference", "the digest of the reference profile it is judged against")
        for key in ("start", "end"):
            if not isinstance(doc[key], str) or not _is_utc_iso(doc[key]):
                raise AggregateShapeError(key, "an ISO 8601 UTC time such as 2024-01-01T00:00:00Z")
        if doc["end"] <= doc["start"]:
            raise AggregateShapeError("end", "a time after start")
        rows = _count(doc["rows"], "rows")
        out = cls(reference, doc["start"], doc["end"])
        out.rows = rows
        _keys(doc["numeric"], "numeric", set(reference.spec.numeric))
        sections = [(f"numeric.{k}", k, v) for k, v in doc["numeric"].items()]
        if reference.doc["score"] is None:
            if doc["score"] is not None:
                raise AggregateShapeError("score", "null (the reference profile has no score)")
        else:
            sections.append(("score", reference.spec.score, doc["score"]))
        for path, name, sec in sections:
            _keys(sec, path, {"bins", "at_edges", "missing", "type_violations"})
            size = len(reference.edges[name]) + 1
            bins, at_edges = sec["bins"], sec["at_edges"]
            if not isinstance(bins, list) or len(bins) != size:
                raise AggregateShapeError(f"{path}.bins", f"a list of {size} counts (the reference's window bins)")
            if not isinstance(at_edges, list) or len(at_edges) != size - 1:
                raise AggregateShapeError(f"{path}.at_edges", f"a list of {size - 1} counts (values equal to each edge)")
            acc = out.numeric[name]
            acc["bins"] = np.array([_count(c, f"{path}.bins") for c in bins], dtype=np.int64)
            acc["at_edges"] = np.array([_count(c, f"{path}.at_edges") for c in at_edges], dtype=np.int64)
            if (acc["at_edges"] > acc["bins"][1:]).any():
                raise AggregateShapeError(f"{path}.at_edges", "no more values at an edge than in the bin that starts there")
            acc["missing"] = _count(sec["missing"], f"{path}.missing")
            acc["type_violations"] = _count(sec["type_violations"], f"{path}.type_violations")
            if int(acc["bins"].sum()) + acc["missing"] + acc["type_violations"] != rows:
                raise AggregateShapeError(path, "bins, missing and type violations that add up to the window's rows")
        _keys(doc["categorical"], "categorical", set(reference.spec.categorical))
        for name, sec in doc["categorical"].items():
            path = f"categorical.{name}"
            _keys(sec, path, {"counts", "unseen", "unseen_other", "missing", "type_violations"})
            categories = reference.doc["categorical"][name]["categories"]
            _keys(sec["counts"], f"{path}.counts", set(categories))
            acc = out.categorical[name]
            acc["counts"] = np.array([_count(sec["counts"][c], f"{path}.counts") for c in categories], dtype=np.int64)
            unseen = sec["unseen"]
            if not isinstance(unseen, dict) or len(unseen) > UNSEEN_NAMES_KEPT:
                raise AggregateShapeError(f"{path}.unseen", f"an object of at most {UNSEEN_NAMES_KEPT} unseen categories")
            if unseen and not reference.keeps_unseen_names(name):
                raise AggregateShapeError(f"{path}.unseen", "no names (a personal column's unseen values are only counted)")
            known = set(categories)
            for k in unseen:
                if not isinstance(k, str) or len(k) > UNSEEN_NAME_LIMIT or k in known:
                    raise AggregateShapeError(f"{path}.unseen", f"names of at most {UNSEEN_NAME_LIMIT} characters that are not reference categories")
            acc["unseen"] = {k: _count(v, f"{path}.unseen") for k, v in unseen.items()}
            for key in ("unseen_other", "missing", "type_violations"):
                acc[key] = _count(sec[key], f"{path}.{key}")
            total = int(acc["counts"].sum()) + sum(acc["unseen"].values()) + acc["unseen_other"] + acc["missing"] + acc["type_violations"]
            if total != rows:
                raise AggregateShapeError(path, "counts, unseen, missing and type violations that add up to the window's rows")
        cells = doc["cells"]
        shape = (reference.n_cells, 2, 3)
        try:
            array = np.array(cells, dtype=object)
            ok = array.shape == shape
        except ValueError:
            ok = False
        if not ok:
            raise AggregateShapeError("cells", f"a nested list of shape {list(shape)} (group cell x predicted x label state)")
        out.cells = np.array([[[_count(c, "cells") for c in p] for p in g] for g in cells], dtype=np.int64)
        if int(out.cells.sum()) != rows:
            raise AggregateShapeError("cells", "cell counts that add up to the window's rows")
        return out


def _keys(doc, path, expected: set):
    if not isinstance(doc, dict):
        raise AggregateShapeError(path, "an object")
    missing, extra = expected - set(doc), set(doc) - expected
    if missing:
        raise AggregateShapeError(path, f"the fields {sorted(missing)} as well")
    if extra:
        raise AggregateShapeError(path, f"only the fields {sorted(expected)} (it has {len(extra)} more)")


def _count(value, path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AggregateShapeError(path, "non-negative integers")
    return value


def _is_utc_iso(text: str) -> bool:
    if not text.endswith("Z"):
        return False
    try:
        datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError:
        return False
    return True


def group_cell_names(reference: ReferenceProfile) -> list[list[str]]:
    """Every group cell's labels, in cell index order."""
    return [list(c) for c in itertools.product(*reference.group_labels)] if reference.group_labels else [[]]
