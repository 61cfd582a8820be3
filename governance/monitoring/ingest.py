"""Ingestion: stream a batch of production predictions into window aggregates, keeping no row.

A batch is CSV, Parquet or JSON lines with the reference's features, the score or the
prediction, a timestamp and (when labels will follow) a prediction id; sensitive attributes
are optional (absent: the rows fall in the attribute's ``(missing)`` group). It is read in
chunks (pyarrow's streaming CSV reader, Parquet record batches read without pre-buffering,
JSON lines in blocks of lines), each chunk is parsed and counted into the aggregate of its
window, and dropped: memory is bounded by one chunk (for Parquet, one row group) and the
aggregates, not by the batch. Columns that the plan
does not name are never parsed (CSV, Parquet) and are listed in the outcome by name.

Windows are ``[origin + k * length, origin + (k + 1) * length)``, keyed by their start in
ISO 8601 UTC. Timestamps must be ISO 8601 with a zone (or a zoned Arrow timestamp).
**Decision:** a row whose timestamp falls outside the accepted range
``[accept_from, accept_until)`` (a window that is already closed, or one in the future) is
*counted as rejected*, by side, and not aggregated: late data is normal in production and
must not make a whole batch fail, while the count keeps it visible. A timestamp that is
empty or cannot be read is an error (``ColumnError``): it is a producer's bug, and no window
could be chosen for the row.

Labels arrive later, by prediction id. When a ``key`` is given, ingestion emits one *join
record* per row: the HMAC-SHA256 (hex) of the prediction id under that key, the window
start, the group cell index and the predicted class, and never the id itself.
``labels_apply`` takes those records and labels keyed by the same hash and moves each
labelled row from its cell's "label unknown" count to its label's count.

A duplicate *batch* (the same bytes again) is refused by its SHA-256 digest. Duplicate
prediction ids within or across batches are not detected here, since that needs memory that
grows with the batch: the store of join records keys them by hash and refuses a second one.

Errors never quote a cell value: they name the column and what was expected, and no
underlying parser message (which may quote the row) is chained.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from .aggregates import ParsedRows, ReferenceProfile, WindowAggregate, decoded, parse_rows
from .errors import BatchFormatError, ColumnError, DuplicateBatch, LabelError
from .vocabulary import FORMATS, iso_utc  # re-exported

CHUNK_ROWS = 131_072
CHUNK_BYTES = 8 << 20
PARQUET_BUFFER = 1 << 20
JOIN_SCHEMA = pa.schema([
    ("prediction", pa.string()),
    ("window", pa.string()),
    ("cell", pa.int32()),
    ("predicted", pa.int8()),
    ("label", pa.int8()),
])


def _ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("window times must carry a time zone")
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


@dataclass(frozen=True)
class WindowSchedule:
    """Windows of LENGTH from ORIGIN; rows are accepted from ACCEPT_FROM (default ORIGIN) until
    ACCEPT_UNTIL (exclusive). The service sets the accepted range to the open windows."""

    origin: datetime
    length: timedelta
    accept_until: datetime
    accept_from: datetime | None = None

    def __post_init__(self):
        if self.accept_from is None:
            object.__setattr__(self, "accept_from", self.origin)
        for moment in (self.origin, self.accept_from, self.accept_until):
            if moment.tzinfo is None:
                raise ValueError("window times must carry a time zone")
        if self.length <= timedelta(0):
            raise ValueError("the window length must be positive")
        if self.accept_until <= self.accept_from:
            raise ValueError("accept_until must come after accept_from")

    def window_index(self, ns: np.ndarray):
        """(window index of each timestamp, before-range mask, after-range mask)."""
        length = self.length // timedelta(microseconds=1) * 1_000
        index = np.floor_divide(ns - _ns(self.origin), length)
        return index, ns < _ns(self.accept_from), ns >= _ns(self.accept_until)

    def bounds(self, index: int) -> tuple[str, str]:
        start = self.origin + index * self.length
        return iso_utc(start), iso_utc(start + self.length)


@dataclass
class IngestOutcome:
    """What one batch produced: the window aggregates by window start, the row counts, the
    batch digest (SHA-256 of its bytes), the columns that were ignored, and the join records
    when no sink took them."""

    windows: dict
    rows_read: int
    rows_accepted: int
    rejected: dict
    batch_digest: str
    ignored_columns: list
    join_records: pa.Table | None = None
    join_record_count: int = 0


# --- keyed hashes of prediction ids ----------------------------------------------------------

def _id_text(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise LabelError("a prediction id must be text or an integer")
    return value if isinstance(value, str) else str(value)


def prediction_hasher(key: bytes) -> Callable[[str], str]:
    """Return f(prediction id text) -> HMAC-SHA256 hex under KEY (RFC 2104), for many ids.

    The padded key's inner and outer hash states are computed once and copied per id: the
    same result as ``hmac.new(key, id, "sha256")``, faster per call."""
    if not isinstance(key, bytes) or len(key) < 16:
        raise ValueError("the join key must be at least 16 bytes")
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def mac(text: str) -> str:
        i = inner.copy()
        i.update(text.encode())
        o = outer.copy()
        o.update(i.digest())
        return o.hexdigest()

    return mac


def prediction_key(prediction_id, key: bytes) -> str:
    """The join hash of one prediction id (its text; an integer as its decimal text)."""
    return hmac.new(key, _id_text(prediction_id).encode(), "sha256").hexdigest()


# --- reading chunks --------------------------------------------------------------------------

def _digest(source) -> str:
    h = hashlib.sha256()
    if isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    else:
        position = source.tell()
        for block in iter(lambda: source.read(1 << 20), b""):
            h.update(block)
        source.seek(position)
    return h.hexdigest()


def _open(source):
    return open(source, "rb") if isinstance(source, (str, Path)) else source


def _csv_header(source) -> list[str]:
    f = _open(source)
    try:
        position = f.tell()
        line = f.readline()
        f.seek(position)
    finally:
        if f is not source:
            f.close()
    try:
        return next(csv.reader([line.decode("utf-8-sig")]))
    except (UnicodeDecodeError, StopIteration, csv.Error):
        raise BatchFormatError("the CSV header is not a line of UTF-8 column names") from None


def _csv_chunks(source, wanted: list[str], chunk_bytes: int):
    header = _csv_header(source)
    if len(set(header)) != len(header):
        raise BatchFormatError("the CSV header names a column more than once")
    present = [c for c in wanted if c in header]
    ignored = [c for c in header if c not in wanted]
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=chunk_bytes, use_threads=False),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in present}, include_columns=present,
                strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        raise BatchFormatError("the file cannot be read as CSV with a header line") from None

    def chunks():
        rows = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
                # pyarrow's message quotes the offending row: never pass it on.
                raise BatchFormatError(
                    f"a CSV row after data row {rows} cannot be read (wrong number of fields, bad quoting or not UTF-8)"
                ) from None
            rows += batch.num_rows
            yield {c: batch.column(c) for c in present}, batch.num_rows

    return present, ignored, True, chunks()


def _parquet_chunks(source, wanted: list[str], chunk_rows: int):
    try:
        # pre_buffer (pyarrow's default for this reader) caches every column chunk it will read,
        # which held the whole file in memory; streamed column chunks keep it to a row group.
        file = pq.ParquetFile(source, pre_buffer=False, buffer_size=PARQUET_BUFFER)
        schema = file.schema_arrow
    except (pa.ArrowInvalid, OSError):
        raise BatchFormatError("the file cannot be read as Parquet") from None
    present = [c for c in wanted if c in schema.names]
    ignored = [c for c in schema.names if c not in wanted]

    def chunks():
        try:
            for batch in file.iter_batches(batch_size=chunk_rows, columns=present, use_threads=False):
                yield {c: batch.column(c) for c in present}, batch.num_rows
        except (pa.ArrowInvalid, OSError):
            raise BatchFormatError("a Parquet row group cannot be read") from None

    return present, ignored, True, chunks()


def _json_value_columns(lines: list[bytes], wanted: list[str], roles: Mapping[str, str], first_line: int):
    """Parse JSON lines with the standard library, for chunks that Arrow's inference rejects
    (a column with values of more than one JSON type): each value converted to the text that
    Arrow would have read, invalid where no such text exists."""
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise BatchFormatError(f"JSON line {first_line + i + 1} is not valid JSON") from None
        if not isinstance(record, dict):
            raise BatchFormatError(f"JSON line {first_line + i + 1} is not an object")
        records.append(record)
    keys = dict.fromkeys(k for r in records for k in r)
    out = {}
    for name in wanted:
        raw = [r.get(name) for r in records]
        if all(v is None for v in raw) and not any(name in r for r in records):
            continue
        role = roles[name]
        text, invalid, floats = [], np.zeros(len(raw), dtype=bool), []
        for i, v in enumerate(raw):
            if v is None or isinstance(v, str):
                text.append(v)
            elif isinstance(v, bool):
                text.append("true" if v else "false")
                invalid[i] = role == "numeric"
            elif isinstance(v, int):
                text.append(str(v))
            elif isinstance(v, float):
                text.append(None)
                floats.append(i)
            else:
                text.append(None)
                invalid[i] = True
        if floats:
            as_text = pc.cast(pa.array([raw[i] for i in floats], pa.float64()), pa.string()).to_pylist()
            for i, t in zip(floats, as_text):
                # repr round-trips exactly for numbers; Arrow's text is the category spelling.
                text[i] = repr(raw[i]) if role == "numeric" else t
                if role == "categorical" and raw[i] != raw[i]:
                    text[i] = None
        if role in ("timestamp", "id") and invalid.any():
            expected = "ISO 8601 text with a zone" if role == "timestamp" else "text or integers"
            raise ColumnError(name, "has values of the wrong type", expected)
        out[name] = (pa.array(text, pa.string()), invalid if invalid.any() else None)
    return out, len(records), list(keys)


def _jsonl_chunks(source, wanted: list[str], roles: Mapping[str, str], chunk_bytes: int):
    seen_columns: dict[str, None] = {}
    # Text roles are read as text: Arrow would otherwise infer timestamps from date-like text,
    # dropping whether a zone was given. A chunk where such a value is a JSON number goes
    # through the standard library parser instead.
    schema = pa.schema([(name, pa.string()) for name in wanted if roles[name] in ("timestamp", "id", "categorical")])

    def chunks():
        f = _open(source)
        line_number = 0
        try:
            while True:
                lines = f.readlines(chunk_bytes)
                if not lines:
                    return
                buffer = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
                try:
                    table = pajson.read_json(
                        io.BytesIO(buffer),
                        read_options=pajson.ReadOptions(use_threads=False, block_size=len(buffer) + 1),
                        parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer"),
                    )
                    for name in table.column_names:
                        seen_columns.setdefault(name)
                    columns = {c: table.column(c) for c in wanted if c in table.column_names}
                    n = table.num_rows
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    columns, n, keys = _json_value_columns(lines, wanted, roles, line_number)
                    for name in keys:
                        seen_columns.setdefault(name)
                line_number += len(lines)
                if n:
                    yield columns, n
        finally:
            if f is not source:
                f.close()

    # JSON lines have no header: every wanted column is "present" (absent keys are empty).
    return list(wanted), seen_columns, False, chunks()


# --- the columns of one chunk ----------------------------------------------------------------

def _timestamps_ns(value, column: str) -> np.ndarray:
    array, _ = value if isinstance(value, tuple) else (value, None)
    array = decoded(array)
    t = array.type
    expected = "ISO 8601 times with a zone, e.g. 2024-03-01T10:00:00+01:00"
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise ColumnError(column, "holds times without a time zone", expected)
        array = pc.cast(array, pa.timestamp("ns", tz="UTC"), safe=False)
    elif pa.types.is_string(t):
        try:
            array = pc.cast(pc.utf8_trim_whitespace(array), pa.timestamp("ns", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ColumnError(column, "has a value that is not an ISO 8601 time with a zone", expected) from None
    else:
        raise ColumnError(column, f"is of type {t}", expected)
    if array.null_count:
        raise ColumnError(column, "has empty timestamps", expected)
    return array.cast(pa.int64()).to_numpy(zero_copy_only=False)


def _prediction_ids(value, column: str) -> list[str]:
    array, invalid = value if isinstance(value, tuple) else (value, None)
    array = decoded(array)
    t = array.type
    if pa.types.is_integer(t):
        array = pc.cast(array, pa.string())
    elif not pa.types.is_string(t):
        raise ColumnError(column, f"is of type {t}", "prediction ids as text or integers")
    if array.null_count or (invalid is not None and invalid.any()):
        raise ColumnError(column, "has empty prediction ids", "a prediction id in every row")
    return array.to_pylist()


# --- ingestion -------------------------------------------------------------------------------

def _roles(reference: ReferenceProfile, timestamp_column: str, id_column: str | None) -> dict:
    spec = reference.spec
    roles = {timestamp_column: "timestamp"}
    if id_column:
        roles[id_column] = "id"
    for name in reference.numeric_columns():
        roles[name] = "numeric"
    for name in spec.categorical:
        roles[name] = "categorical"
    if spec.prediction:
        roles[spec.prediction] = "categorical"
    for g in spec.groups:
        roles.setdefault(g.column, "numeric" if g.cut_points else "categorical")
    return roles


def ingest_batch(
    source,
    *,
    file_format: str,
    reference: ReferenceProfile,
    schedule: WindowSchedule,
    timestamp_column: str,
    prediction_id_column: str | None = None,
    key: bytes | None = None,
    join_sink: Callable[[pa.Table], None] | None = None,
    seen_batches: Iterable[str] = (),
    chunk_rows: int = CHUNK_ROWS,
    chunk_bytes: int = CHUNK_BYTES,
) -> IngestOutcome:
    """Stream the batch SOURCE (a path or a seekable binary file) into window aggregates.

    FILE_FORMAT is ``csv``, ``parquet`` or ``jsonl``. With KEY (bytes, at least 16), every
    accepted row gives a join record (``JOIN_SCHEMA``); they go to JOIN_SINK one table per
    chunk, or, without a sink, are returned together (memory then grows with the batch).
    SEEN_BATCHES holds the digests of the batches already ingested for this plan; a batch
    whose bytes have one of them raises ``DuplicateBatch``.
    """
    if file_format not in FORMATS:
        raise BatchFormatError(f"the batch format must be one of {', '.join(FORMATS)}")
    if key is not None and not prediction_id_column:
        raise ValueError("join records need the prediction id column")
    digest = _digest(source)
    if digest in set(seen_batches):
        raise DuplicateBatch("this batch (same SHA-256 of its bytes) was already ingested for this plan")
    roles = _roles(reference, timestamp_column, prediction_id_column if key is not None else None)
    wanted = list(roles)
    if file_format == "csv":
        present, ignored, declared, chunks = _csv_chunks(source, wanted, chunk_bytes)
    elif file_format == "parquet":
        present, ignored, declared, chunks = _parquet_chunks(source, wanted, chunk_rows)
    else:
        present, ignored, declared, chunks = _jsonl_chunks(source, wanted, roles, chunk_bytes)
    optional = {g.column for g in reference.spec.groups} - set(reference.spec.categorical) - set(reference.numeric_columns())
    for name in wanted:
        if name not in present and name not in optional:
            raise ColumnError(name, "is absent from the batch", f"a {roles[name]} column named by the monitoring plan")
    mac = prediction_hasher(key) if key is not None else None
    windows: dict[int, WindowAggregate] = {}
    rejected = {"before_accepted_range": 0, "after_accepted_range": 0}
    collected = []
    rows_read = accepted_total = join_count = 0
    for columns, n in chunks:
        rows_read += n
        if timestamp_column not in columns:
            raise ColumnError(timestamp_column, "has empty timestamps", "a timestamp in every row")
        ns = _timestamps_ns(columns[timestamp_column], timestamp_column)
        index, before, after = schedule.window_index(ns)
        rejected["before_accepted_range"] += int(before.sum())
        rejected["after_accepted_range"] += int(after.sum())
        keep = ~(before | after)
        ids = None
        if mac is not None:
            if prediction_id_column not in columns:
                raise ColumnError(prediction_id_column, "has empty prediction ids", "a prediction id in every row")
            ids = _prediction_ids(columns[prediction_id_column], prediction_id_column)
        parsed = parse_rows(reference, columns, n, declared=declared)
        if not keep.all():
            positions = np.flatnonzero(keep)
            parsed, index = parsed.take(positions), index[positions]
            if ids is not None:
                ids = [ids[i] for i in positions]
        if not len(index):
            continue
        accepted_total += len(index)
        first, last = int(index.min()), int(index.max())
        if first == last:
            groups = [(first, 0, len(index))]
        else:
            if (np.diff(index) < 0).any():  # rows not in time order: group them by window
                order = np.argsort(index, kind="stable")
                parsed, index = parsed.take(order), index[order]
                if ids is not None:
                    ids = [ids[i] for i in order]
            cuts = np.flatnonzero(np.diff(index)) + 1
            starts = np.concatenate([[0], cuts])
            stops = np.concatenate([cuts, [len(index)]])
            groups = [(int(index[a]), int(a), int(b)) for a, b in zip(starts, stops)]
        for k, a, b in groups:
            window = windows.get(k)
            if window is None:
                window = windows[k] = WindowAggregate.empty(reference, *schedule.bounds(k))
            window.add(parsed if (a, b) == (0, len(index)) else parsed.slice(a, b))
        if mac is not None:
            table = _join_table(ids, index, parsed, schedule, mac)
            join_count += table.num_rows
            if join_sink is not None:
                join_sink(table)
            else:
                collected.append(table)
    return IngestOutcome(
        windows={w.start: w for _, w in sorted(windows.items())},
        rows_read=rows_read,
        rows_accepted=accepted_total,
        rejected=rejected,
        batch_digest=digest,
        ignored_columns=[c for c in ignored if c not in wanted],
        join_records=(pa.concat_tables(collected) if collected else JOIN_SCHEMA.empty_table()) if mac and join_sink is None else None,
        join_record_count=join_count,
    )


def _join_table(ids: list[str], index: np.ndarray, parsed: ParsedRows, schedule, mac) -> pa.Table:
    distinct, local = np.unique(index, return_inverse=True)
    starts = pa.array([schedule.bounds(int(k))[0] for k in distinct], pa.string())
    return pa.table({
        "prediction": pa.array([mac(i) for i in ids], pa.string()),
        "window": pc.take(starts, pa.array(local.astype(np.int32))),
        "cell": pa.array(parsed.cells.astype(np.int32)),
        "predicted": pa.array(parsed.predicted.astype(np.int8)),
        "label": pa.nulls(len(ids), pa.int8()),
    }, schema=JOIN_SCHEMA)


# --- labels ----------------------------------------------------------------------------------

@dataclass
class LabelOutcome:
    """The windows with the labels applied (new objects), the join records with their label
    column filled, and how many labels were applied, matched no record, or found the record
    already labelled (those are not counted twice)."""

    windows: dict
    join_records: pa.Table
    applied: int
    unmatched: int
    already_labelled: int
    by_window: dict = field(default_factory=dict)


def labels_apply(windows: Mapping[str, WindowAggregate], join_records: pa.Table, labels: Mapping[str, object]) -> LabelOutcome:
    """Apply LABELS (join hash of the prediction id -> label value) to JOIN_RECORDS.

    Every window a matched record names must be in WINDOWS (keyed by window start). A label
    must be one of the reference's two labels (LabelError otherwise, naming no value)."""
    if join_records.schema.remove_metadata() != JOIN_SCHEMA:
        raise LabelError("join records must have the columns prediction, window, cell, predicted, label")
    out = {k: w.copy() for k, w in windows.items()}
    reference = next(iter(out.values())).reference if out else None
    keys = pa.array(list(labels.keys()), pa.string())
    matched = pc.is_in(join_records.column("prediction"), value_set=keys).to_numpy(zero_copy_only=False)
    matched = np.asarray(matched, dtype=bool)
    positions = np.flatnonzero(matched)
    labelled = pc.is_valid(join_records.column("label")).to_numpy(zero_copy_only=False)
    new_labels = join_records.column("label").to_pylist()
    already = applied = 0
    by_window: dict[str, int] = {}
    if len(positions):
        if reference is None:
            raise LabelError("labels match join records but no window was given")
        hashes = join_records.column("prediction").take(pa.array(positions)).to_pylist()
        window_of = join_records.column("window").take(pa.array(positions)).to_pylist()
        cells = join_records.column("cell").to_numpy()[positions]
        predicted = join_records.column("predicted").to_numpy()[positions]
        for pos, h, w, cell, pred in zip(positions, hashes, window_of, cells, predicted):
            if labelled[pos]:
                already += 1
                continue
            window = out.get(w)
            if window is None:
                raise LabelError(f"a labelled join record belongs to window {w}, which was not given")
            code = reference.label_code(labels[h])
            if window.cells[cell, pred, 0] <= 0:
                raise LabelError(f"window {w} has no unlabelled row left in the record's cell")
            window.cells[cell, pred, 0] -= 1
            window.cells[cell, pred, 1 + code] += 1
            new_labels[pos] = code
            applied += 1
            by_window[w] = by_window.get(w, 0) + 1
    matched_hashes = set(join_records.column("prediction").take(pa.array(positions)).to_pylist()) if len(positions) else set()
    unmatched = sum(1 for h in labels if h not in matched_hashes)
    records = join_records.set_column(4, "label", pa.array(new_labels, pa.int8()))
    return LabelOutcome(windows=out, join_records=records, applied=applied, unmatched=unmatched,
                        already_labelled=already, by_window=by_window)
