"""Read what a tabular snapshot holds (schema, rows, subject ids) in bounded memory.

CSV is read with pyarrow's streaming reader, Parquet by record batches, so a snapshot of
any size is inspected one block at a time. Malformed or truncated input raises
``SnapshotInvalid`` with a message fit to show to the uploader.
"""

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..rules.limits import SNAPSHOT_MAX_COLUMNS, quoted_list
from .subjects import count_normalised_keys, count_subject_keys

BLOCK = 4 * 1024 * 1024


class SnapshotInvalid(ValueError):
    """The file is not a readable CSV/Parquet snapshot, or lacks a declared column."""


@dataclass
class SnapshotFacts:
    schema: list  # [{"name", "type"}]
    row_count: int
    subject_counts: Counter = field(default_factory=Counter)  # subject key -> rows
    rows_without_subject: int = 0


def _csv_header_width(source) -> int:
    """How many fields the CSV's first record has, read with the standard library (linear):
    pyarrow's reader takes minutes to open a file of 30,000 columns."""
    opened = source()
    if isinstance(opened, (str, bytes)) or hasattr(opened, "__fspath__"):
        with open(opened, "rb") as f:
            head = f.read(BLOCK)
    else:
        head = opened.read(BLOCK)
        opened.seek(0)
    text = head.decode("utf-8", errors="replace")
    try:
        return len(next(csv.reader(io.StringIO(text)), []))
    except csv.Error:
        return 0  # the reader below names what is wrong


def _check_width(columns: int):
    if columns > SNAPSHOT_MAX_COLUMNS:
        raise SnapshotInvalid(f"The snapshot has {columns:,} columns; at most {SNAPSHOT_MAX_COLUMNS:,} are accepted.")


def _batches_csv(source, subject_column, all_text):
    width = _csv_header_width(source)
    _check_width(width)
    convert = pacsv.ConvertOptions(
        column_types={subject_column: pa.string()} if subject_column and not all_text else None,
        strings_can_be_null=False,
    )
    read = pacsv.ReadOptions(block_size=BLOCK)
    if all_text:
        # Read the header to name every column text.
        header = pacsv.open_csv(source(), read_options=read).schema
        convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in header.names})
    reader = pacsv.open_csv(source(), read_options=read, convert_options=convert)
    return reader.schema, reader


def _batches_parquet(source):
    pf = pq.ParquetFile(source())
    return pf.schema_arrow, pf.iter_batches(batch_size=65536)


def _check_declared(schema, declared):
    # Linear in the number of columns (a quadratic check of 30,000 columns outlasted a worker's
    # timeout), and bounded by SNAPSHOT_MAX_COLUMNS before anything else looks at them.
    names = schema.names  # pyarrow builds this list anew at every access: once
    _check_width(len(names))
    if any("\x00" in n for n in names):
        raise SnapshotInvalid("A column name contains a NUL character.")
    # A repeated name makes a declared column ambiguous (and Arrow's index lookup answers -1,
    # which picks the last column): the subject index would hold another column's values.
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise SnapshotInvalid(f"Column names must be unique; repeated: {quoted_list(repeated)}.")
    present = set(names)
    missing = sorted({c for c in declared if c and c not in present})
    if missing:
        raise SnapshotInvalid(
            f"Declared column(s) not in the snapshot: {quoted_list(missing)}. Columns: {quoted_list(names)}."
        )


def inspect_snapshot(source, *, file_format: str, subject_column: str = "", declared=(), index_key=None) -> SnapshotFacts:
    """Read the snapshot that SOURCE() opens (a fresh binary file object or path per call).

    Check that every declared column exists, count rows, and count rows per subject key.
    """
    if file_format not in ("csv", "parquet"):
        raise SnapshotInvalid(f"Unsupported snapshot format {file_format!r}: use csv or parquet.")
    all_text = False
    while True:
        try:
            return _inspect(source, file_format, subject_column, declared, index_key, all_text)
        except pa.ArrowInvalid as exc:
            message = str(exc)
            # Types are inferred from the first block; a later block may not fit them. Read
            # everything as text then, rather than refuse a well-formed file.
            if file_format == "csv" and not all_text and "conversion error" in message:
                all_text = True
                continue
            raise SnapshotInvalid(f"The {file_format.upper()} file cannot be read: {_reason(message)}") from None
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            raise SnapshotInvalid(f"The {file_format.upper()} file cannot be read: {_reason(str(exc))}") from None


def _reason(message: str) -> str:
    """The parser's complaint without the offending row: Arrow quotes the row it cannot parse,
    and a snapshot's rows are personal data that must not travel back in errors or logs."""
    line = (message.splitlines() or [""])[0]
    return re.sub(r"(Expected \d+ columns, got \d+):.*", r"\1", line)[:300]


def _inspect(source, file_format, subject_column, declared, index_key, all_text):
    if file_format == "csv":
        schema, batches = _batches_csv(source, subject_column, all_text)
    else:
        schema, batches = _batches_parquet(source)
    _check_declared(schema, [subject_column, *declared])
    rows = 0
    counts = Counter()
    without = 0
    for batch in batches:
        rows += batch.num_rows
        if subject_column:
            column = batch.column(schema.get_field_index(subject_column))
            if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                column = pc.cast(column, pa.string())
            without += column.null_count
            vc = pc.value_counts(column)
            values = vc.field("values")
            if pc.all(pc.string_is_ascii(values)).as_py() is not False:
                # For ASCII text, NFKC is the identity and casefold is lower(): do it in Arrow
                # and hash already-normalised ids (the bulk of the work stays in C).
                values = pc.ascii_lower(pc.ascii_trim_whitespace(values))
                count_normalised_keys(values.to_pylist(), vc.field("counts").to_pylist(), key=index_key, into=counts)
            else:
                count_subject_keys(
                    zip(values.to_pylist(), vc.field("counts").to_pylist(), strict=True), key=index_key, into=counts
                )
    if rows == 0:
        raise SnapshotInvalid("The snapshot has no rows.")
    return SnapshotFacts(
        schema=[{"name": f.name, "type": str(f.type)} for f in schema],
        row_count=rows,
        subject_counts=counts,
        rows_without_subject=without,
    )
