"""Ingestion from CSV, Parquet and JSON lines against aggregates computed on the rows of each
window directly; windows, rejections, bad input, join records, labels; no row value kept."""

import hmac
import io
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import confusion_matrix

from governance.monitoring.errors import BatchFormatError, ColumnError, DuplicateBatch, LabelError, MonitoringInputError
from governance.monitoring.ingest import (
    JOIN_SCHEMA,
    WindowSchedule,
    ingest_batch,
    iso_utc,
    labels_apply,
    prediction_key,
)

from .conftest import KEY, ORIGIN, WEEK, window_of_rows


def _jsonl(frame, path):
    # json.dumps writes floats with repr (exact), unlike DataFrame.to_json's 10 digits.
    with open(path, "w") as f:
        for record in frame.to_dict(orient="records"):
            f.write(json.dumps({k: (None if isinstance(v, float) and v != v else v) for k, v in record.items()}) + "\n")


@pytest.fixture(scope="module")
def batch_files(tmp_path_factory, production_frame):
    folder = tmp_path_factory.mktemp("batches")
    paths = {"csv": folder / "batch.csv", "parquet": folder / "batch.parquet", "jsonl": folder / "batch.jsonl"}
    production_frame.to_csv(paths["csv"], index=False)
    pq.write_table(pa.Table.from_pandas(production_frame, preserve_index=False), paths["parquet"], row_group_size=1000)
    _jsonl(production_frame, paths["jsonl"])
    return paths


def _ingest(path, fmt, reference, schedule, **kw):
    kw.setdefault("key", KEY)
    return ingest_batch(path, file_format=fmt, reference=reference, schedule=schedule, timestamp_column="ts",
                        prediction_id_column="pid", **kw)


@pytest.fixture(scope="module")
def expected_windows(reference, production_frame, production_weeks):
    """Each week's aggregate computed from that week's rows directly."""
    out = {}
    for k in sorted(set(production_weeks)):
        start = ORIGIN + int(k) * WEEK
        out[iso_utc(start)] = window_of_rows(reference, production_frame[production_weeks == k],
                                             iso_utc(start), iso_utc(start + WEEK)).to_json()
    return out


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_each_format_gives_the_windows_of_the_rows(batch_files, fmt, reference, schedule, expected_windows):
    outcome = _ingest(batch_files[fmt], fmt, reference, schedule)
    assert {k: w.to_json() for k, w in outcome.windows.items()} == expected_windows
    assert outcome.rows_read == outcome.rows_accepted == 6000
    assert outcome.rejected == {"before_accepted_range": 0, "after_accepted_range": 0}
    assert set(outcome.windows) == {f"2024-01-{d:02d}T00:00:00Z" for d in (1, 8, 15, 22, 29)} | {"2024-02-05T00:00:00Z"}
    assert outcome.ignored_columns == ["applicant_name"]  # never parsed (CSV, Parquet) or dropped (JSON)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_chunk_size_does_not_change_the_figures(batch_files, fmt, reference, schedule, expected_windows):
    outcome = _ingest(batch_files[fmt], fmt, reference, schedule, key=None, chunk_rows=777, chunk_bytes=50_000)
    assert {k: w.to_json() for k, w in outcome.windows.items()} == expected_windows
    assert outcome.join_records is None


def test_window_boundaries_and_zones(reference, production_frame, tmp_path):
    schedule = WindowSchedule(origin=ORIGIN, length=WEEK, accept_until=ORIGIN + 2 * WEEK)
    frame = production_frame.head(5).copy()
    frame["ts"] = [
        "2024-01-01T00:00:00Z",              # first instant of week 0
        "2024-01-08T00:59:59.999999+01:00",  # 2024-01-07T23:59:59.999999Z: last instant of week 0
        "2024-01-08T01:00:00+01:00",         # first instant of week 1
        "2023-12-31T23:59:59Z",              # before the accepted range
        "2024-01-15T00:00:00Z",              # the end of the accepted range: after it
    ]
    frame.to_csv(tmp_path / "b.csv", index=False)
    outcome = _ingest(tmp_path / "b.csv", "csv", reference, schedule)
    assert {k: w.rows for k, w in outcome.windows.items()} == {"2024-01-01T00:00:00Z": 2, "2024-01-08T00:00:00Z": 1}
    assert outcome.rejected == {"before_accepted_range": 1, "after_accepted_range": 1}
    assert outcome.windows["2024-01-08T00:00:00Z"].end == "2024-01-15T00:00:00Z"
    assert outcome.join_records.num_rows == 3


@pytest.mark.parametrize("bad", ["2024-01-03T10:00:00", "yesterday at noon Sentinel-Value-77", "1704067200"])
def test_a_timestamp_without_a_zone_or_unreadable_is_an_error_that_quotes_nothing(reference, schedule, production_frame, tmp_path, bad):
    frame = production_frame.head(50).copy()
    frame.loc[17, "ts"] = bad
    frame.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(ColumnError) as err:
        _ingest(tmp_path / "b.csv", "csv", reference, schedule)
    assert err.value.column == "ts" and "ISO 8601" in str(err.value)
    assert bad not in str(err.value) and "Sentinel" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_zone_less_parquet_timestamps_and_empty_timestamps_are_errors(reference, schedule, production_frame, tmp_path):
    frame = production_frame.head(20).copy()
    frame["ts"] = pd.date_range("2024-01-02", periods=20, freq="h")  # no zone
    frame.to_parquet(tmp_path / "naive.parquet")
    with pytest.raises(ColumnError, match="without a time zone"):
        _ingest(tmp_path / "naive.parquet", "parquet", reference, schedule)
    frame["ts"] = pd.date_range("2024-01-02", periods=20, freq="h", tz="Europe/Berlin")
    frame.loc[3, "ts"] = pd.NaT
    frame.to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(ColumnError, match="empty timestamps"):
        _ingest(tmp_path / "empty.parquet", "parquet", reference, schedule)


def test_zoned_parquet_timestamps_land_in_their_utc_window(reference, schedule, production_frame, tmp_path):
    frame = production_frame.head(3).copy()
    frame["ts"] = pd.to_datetime(["2024-01-08 00:30", "2024-01-08 01:30", "2024-01-01 00:00"]).tz_localize("Europe/Berlin")
    frame.to_parquet(tmp_path / "zoned.parquet")
    outcome = _ingest(tmp_path / "zoned.parquet", "parquet", reference, schedule)
    assert {k: w.rows for k, w in outcome.windows.items()} == {"2024-01-01T00:00:00Z": 1, "2024-01-08T00:00:00Z": 1}
    assert outcome.rejected["before_accepted_range"] == 1  # 2023-12-31T23:00Z


def test_missing_and_misfit_columns(reference, schedule, production_frame, tmp_path):
    frame = production_frame.head(30)
    frame.drop(columns=["duration"]).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(ColumnError, match="'duration'.*absent"):
        _ingest(tmp_path / "a.csv", "csv", reference, schedule)
    frame.drop(columns=["pid"]).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(ColumnError, match="'pid'"):
        _ingest(tmp_path / "b.parquet", "parquet", reference, schedule)
    # Without labels to come (no key), no prediction id is needed.
    assert _ingest(tmp_path / "b.parquet", "parquet", reference, schedule, key=None).rows_accepted == 30
    nested = pa.Table.from_pandas(frame, preserve_index=False).set_column(
        frame.columns.get_loc("age"), "age", pa.array([[1]] * 30))
    pq.write_table(nested, tmp_path / "c.parquet")
    with pytest.raises(ColumnError, match="'age'.*list"):
        _ingest(tmp_path / "c.parquet", "parquet", reference, schedule)
    # A sensitive attribute that is not also a feature may be absent: its rows are (missing).


def test_sensitive_attribute_absent_puts_rows_in_the_missing_group(reference_frame, production_frame, schedule, tmp_path):
    from governance.monitoring.aggregates import GroupAttribute, ProfileSpec, ReferenceProfile

    spec = ProfileSpec(numeric=("duration",), score="score", threshold=0.5, label="risk",
                       groups=(GroupAttribute("sex"),))
    profile = ReferenceProfile.from_frame(reference_frame, spec)
    production_frame.head(40).drop(columns=["sex"]).to_csv(tmp_path / "a.csv", index=False)
    outcome = _ingest(tmp_path / "a.csv", "csv", profile, schedule)
    cells = next(iter(outcome.windows.values())).cells
    assert profile.group_labels[0][2] == "(missing)" and cells[2].sum() == 40 and cells.sum() == 40


def test_unreadable_csv_rows_are_an_error_that_quotes_nothing(reference, schedule, production_frame, tmp_path):
    production_frame.head(30).to_csv(tmp_path / "a.csv", index=False)
    text = (tmp_path / "a.csv").read_text().splitlines()
    text.insert(12, "Sentinel-Row,with,too,few")
    (tmp_path / "a.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(BatchFormatError) as err:
        _ingest(tmp_path / "a.csv", "csv", reference, schedule)
    assert "Sentinel" not in str(err.value) and err.value.__suppress_context__
    (tmp_path / "b.jsonl").write_text('{"ts": "2024-01-02T00:00:00Z"}\n{Sentinel-Broken\n')
    with pytest.raises(BatchFormatError) as err:
        _ingest(tmp_path / "b.jsonl", "jsonl", reference, schedule)
    assert "Sentinel" not in str(err.value)


def test_a_duplicate_batch_is_refused(reference, schedule, batch_files):
    first = _ingest(batch_files["parquet"], "parquet", reference, schedule, key=None)
    with pytest.raises(DuplicateBatch):
        _ingest(batch_files["parquet"], "parquet", reference, schedule, key=None, seen_batches=[first.batch_digest])
    assert first.batch_digest == __import__("hashlib").sha256(batch_files["parquet"].read_bytes()).hexdigest()


def test_text_numbers_type_violations_and_json_mixed_types_agree(reference, schedule, production_frame, tmp_path):
    frame = production_frame.head(200).copy()
    frame["age"] = frame["age"].astype(object)
    frame.loc[0, "age"], frame.loc[1, "age"], frame.loc[2, "age"] = " 42 ", "4.2e1", "Sentinel-Age"
    frame.loc[3, "age"], frame.loc[4, "age"], frame.loc[5, "age"] = None, "inf", True
    frame["job"] = frame["job"].astype(object)
    frame.loc[6, "job"] = "2"  # a number as text and as a number are one category
    frame.at[7, "job"] = {"nested": 1}  # JSON only: a type violation
    csv_frame = frame.copy()
    csv_frame.loc[7, "job"] = None
    csv_frame.to_csv(tmp_path / "a.csv", index=False)
    _jsonl(frame, tmp_path / "a.jsonl")
    from_csv = _ingest(tmp_path / "a.csv", "csv", reference, schedule, key=None).windows
    from_json = _ingest(tmp_path / "a.jsonl", "jsonl", reference, schedule, key=None).windows
    (window,) = from_csv.values()
    age = window.numeric["age"]
    # CSV: "True" is text, not a number; JSON: true is a boolean: both type violations.
    assert age["missing"] == 1 and age["type_violations"] == 3
    job_json = next(iter(from_json.values())).categorical["job"]
    assert job_json["type_violations"] == 1 and window.categorical["job"]["missing"] == 1
    csv_json, json_json = window.to_json(), next(iter(from_json.values())).to_json()
    assert csv_json["numeric"] == json_json["numeric"]
    assert csv_json["categorical"]["job"]["counts"] == json_json["categorical"]["job"]["counts"]


# --- join records and labels -----------------------------------------------------------------

def test_join_records_carry_a_keyed_hash_and_never_the_id(reference, schedule, batch_files, production_frame, production_weeks):
    outcome = _ingest(batch_files["csv"], "csv", reference, schedule)
    records = outcome.join_records
    assert records.schema == JOIN_SCHEMA and records.num_rows == 6000 == outcome.join_record_count
    expected = [hmac.new(KEY, pid.encode(), "sha256").hexdigest() for pid in production_frame["pid"]]
    assert records.column("prediction").to_pylist() == expected
    assert prediction_key("pred-000007", KEY) == expected[7]
    starts = [iso_utc(ORIGIN + int(k) * WEEK) for k in production_weeks]
    assert records.column("window").to_pylist() == starts
    assert records.column("predicted").to_pylist() == (production_frame["score"] >= 0.5).astype(int).tolist()
    sexes, bands = reference.group_labels
    band = np.searchsorted([25, 60], production_frame["age"], side="right")
    cell = [sexes.index(s) * len(bands) + b for s, b in zip(production_frame["sex"], band)]
    assert records.column("cell").to_pylist() == cell
    assert records.column("label").null_count == 6000


def test_join_records_stream_to_a_sink_one_table_per_chunk(reference, schedule, batch_files):
    tables = []
    outcome = _ingest(batch_files["parquet"], "parquet", reference, schedule, join_sink=tables.append, chunk_rows=1000)
    assert outcome.join_records is None and len(tables) == 6 and sum(t.num_rows for t in tables) == 6000


def test_no_row_value_remains_in_any_output(reference, schedule, production_frame, tmp_path):
    frame = production_frame.copy()
    frame.loc[::50, "sex"] = "Zelda Quartermain-Sentinel"  # a personal value in a sensitive attribute
    frame.to_parquet(tmp_path / "a.parquet")
    outcome = _ingest(tmp_path / "a.parquet", "parquet", reference, schedule)
    text = json.dumps({k: w.to_json() for k, w in outcome.windows.items()})
    text += json.dumps(outcome.join_records.to_pylist()) + json.dumps(outcome.__dict__, default=str)
    assert "Sentinel" not in text and "Zelda" not in text
    assert not any(pid in text for pid in frame["pid"])


def test_labels_apply_fills_the_cells_once(reference, schedule, batch_files, production_frame, production_labels, production_weeks):
    outcome = _ingest(batch_files["parquet"], "parquet", reference, schedule)
    labelled = np.arange(6000) % 3 != 0  # two in three predictions get their label
    labels = {prediction_key(pid, KEY): int(y) for pid, y, keep in
              zip(production_frame["pid"], production_labels, labelled) if keep}
    labels[prediction_key("pred-unknown", KEY)] = 1
    result = labels_apply(outcome.windows, outcome.join_records, labels)
    assert result.applied == labelled.sum() and result.unmatched == 1 and result.already_labelled == 0
    predicted = (production_frame["score"] >= 0.5).astype(int).to_numpy()
    for k, start in enumerate(sorted(result.windows)):
        rows = (production_weeks == k) & labelled
        tn, fp, fn, tp = confusion_matrix(production_labels[rows], predicted[rows], labels=[0, 1]).ravel()
        cells = result.windows[start].cells.sum(axis=0)  # (predicted, label state)
        assert (cells[0, 1], cells[1, 1], cells[0, 2], cells[1, 2]) == (tn, fp, fn, tp)
        assert cells[:, 0].sum() == ((production_weeks == k) & ~labelled).sum()
        assert outcome.windows[start].cells[:, :, 1:].sum() == 0  # the inputs are not changed
    again = labels_apply(result.windows, result.join_records, labels)
    assert again.applied == 0 and again.already_labelled == labelled.sum()
    assert all(again.windows[k] == result.windows[k] for k in result.windows)


def test_bad_labels_are_refused_without_their_value(reference, schedule, batch_files, production_frame):
    outcome = _ingest(batch_files["parquet"], "parquet", reference, schedule)
    with pytest.raises(LabelError) as err:
        labels_apply(outcome.windows, outcome.join_records, {prediction_key("pred-000001", KEY): "Sentinel-Label"})
    assert "Sentinel" not in str(err.value)
    first = next(iter(outcome.windows))
    with pytest.raises(LabelError, match="not given"):
        labels_apply({first: outcome.windows[first]}, outcome.join_records, {prediction_key("pred-005999", KEY): 1})


def test_every_input_error_is_a_monitoring_input_error(reference, schedule, tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(MonitoringInputError):
        _ingest(tmp_path / "x.parquet", "parquet", reference, schedule)
    with pytest.raises(MonitoringInputError):
        _ingest(tmp_path / "x.parquet", "xlsx", reference, schedule)
    with pytest.raises(ValueError):
        WindowSchedule(origin=datetime(2024, 1, 1), length=WEEK, accept_until=ORIGIN)
    with pytest.raises(ValueError):
        WindowSchedule(origin=ORIGIN, length=timedelta(0), accept_until=ORIGIN + WEEK)


def test_a_file_object_is_read_in_place(reference, schedule, batch_files):
    data = io.BytesIO(batch_files["parquet"].read_bytes())
    outcome = ingest_batch(data, file_format="parquet", reference=reference, schedule=schedule, timestamp_column="ts")
    assert outcome.rows_accepted == 6000 and datetime.now(timezone.utc) > ORIGIN
