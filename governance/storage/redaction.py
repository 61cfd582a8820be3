"""Rewrite a stored snapshot without one person's rows, streaming, in bounded memory.

Two passes over the decrypted predecessor, never more than a block of it in memory and none of
it on disk in clear:

1. ``subject_positions``: read only the subject column (pyarrow, as the upload's inspection
   reads it, with the same normalisation), hash each distinct id with the index key and note
   the positions of the rows whose keyed hash is the person's. The person is known here by
   that keyed hash only.
2. ``redact_csv`` / ``redact_parquet``: copy every other row into the successor's encrypting
   writer. CSV: every remaining record byte for byte (header, quoting, line endings and blank
   lines as they were). Parquet: the same Arrow schema (and its metadata) and values, row
   groups rewritten.

``read_successor`` reads the successor back under its new key, in one streaming pass, for the
verification the erasure rules decide on (``index_digest`` compares every other person's rows
with the predecessor's index without holding them all).
"""

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .subjects import hmac_sha256_hex, normalise_subject_id
from .tabular import BLOCK, SnapshotInvalid

_QUOTE_OR_NEWLINE = re.compile(rb'["\n]')
BATCH_ROWS = 65536


@dataclass(frozen=True)
class RedactionResult:
    rows_read: int
    rows_removed: int


def _subject_batches(source, file_format, subject_column):
    if file_format == "csv":
        reader = pacsv.open_csv(
            source(),
            read_options=pacsv.ReadOptions(block_size=BLOCK),
            convert_options=pacsv.ConvertOptions(
                include_columns=[subject_column], column_types={subject_column: pa.string()},
                strings_can_be_null=False,
            ),
        )
        for batch in reader:
            yield batch.column(0)
    else:
        for batch in pq.ParquetFile(source()).iter_batches(batch_size=BATCH_ROWS, columns=[subject_column]):
            yield batch.column(0)


def subject_positions(source, *, file_format: str, subject_column: str, subject_key: str, index_key: bytes) -> list[int]:
    """Return the 0-based positions of the data rows whose subject's keyed hash is SUBJECT_KEY.

    SOURCE() opens a fresh readable (and, for Parquet, seekable) binary file object of the
    plaintext. The ids are normalised exactly as the upload indexed them
    (``tabular._inspect``): ASCII ids trimmed and lower-cased in Arrow, others by
    ``normalise_subject_id``.
    """
    mac = hmac_sha256_hex(index_key)
    positions: list[int] = []
    offset = 0
    try:
        for column in _subject_batches(source, file_format, subject_column):
            if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                column = pc.cast(column, pa.string())
            values = pc.unique(column).drop_null()
            if pc.all(pc.string_is_ascii(values)).as_py() is not False:
                normalised = pc.ascii_lower(pc.ascii_trim_whitespace(values)).to_pylist()
            else:
                normalised = [normalise_subject_id(v) for v in values.to_pylist()]
            hits = [raw for raw, text in zip(values.to_pylist(), normalised, strict=True)
                    if text and mac(text.encode()) == subject_key]
            if hits:
                mask = pc.fill_null(pc.is_in(column, value_set=pa.array(hits, pa.string())), False)
                positions.extend(offset + i for i in pc.indices_nonzero(mask).to_pylist())
            offset += len(column)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise SnapshotInvalid(f"The snapshot cannot be read for redaction: {str(exc).splitlines()[0][:200]}") from None
    return positions


def _split_records(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Split BUFFER (starting at a record boundary) into complete CSV records and the rest.

    A newline inside a quoted field belongs to its record; a doubled quote toggles twice.
    """
    if b'"' not in buffer:
        parts = buffer.split(b"\n")
        rest = parts.pop()
        return [p + b"\n" for p in parts], rest
    records, start, quoted = [], 0, False
    for match in _QUOTE_OR_NEWLINE.finditer(buffer):
        if match.group() == b'"':
            quoted = not quoted
        elif not quoted:
            records.append(buffer[start: match.end()])
            start = match.end()
    return records, buffer[start:]


def _is_blank(record: bytes) -> bool:
    return not record.strip(b"\r\n")


def redact_csv(chunks, dst, *, positions) -> RedactionResult:
    """Copy the CSV records of CHUNKS (decrypted bytes) into DST, leaving out data rows at POSITIONS.

    The header and blank lines are copied and not counted as rows (pyarrow skips blank lines,
    so positions count data rows the same way). Memory: one chunk plus one record.
    """
    drop = set(positions)
    row = -1  # the header is row -1
    removed = 0
    rest = b""
    for chunk in chunks:
        records, rest = _split_records(rest + chunk)
        kept = []
        for record in records:
            if _is_blank(record):
                kept.append(record)
                continue
            if row in drop:
                removed += 1
            else:
                kept.append(record)
            row += 1
        dst.write(b"".join(kept))
    if rest:  # the last record has no line ending
        if _is_blank(rest):
            dst.write(rest)
        else:
            if row in drop:
                removed += 1
            else:
                dst.write(rest)
            row += 1
    return RedactionResult(rows_read=max(row, 0), rows_removed=removed)


def redact_parquet(source, dst, *, positions) -> RedactionResult:
    """Write the Parquet file SOURCE() opens into DST without the rows at POSITIONS: same schema, same values."""
    drop = sorted(set(positions))
    pf = pq.ParquetFile(source())
    writer = pq.ParquetWriter(dst, pf.schema_arrow)
    offset = removed = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            end = offset + batch.num_rows
            here = [p - offset for p in drop if offset <= p < end]
            if here:
                keep = [True] * batch.num_rows
                for i in here:
                    keep[i] = False
                batch = batch.filter(pa.array(keep))
                removed += len(here)
            if batch.num_rows:
                writer.write_batch(batch)
            offset = end
    finally:
        writer.close()
    return RedactionResult(rows_read=offset, rows_removed=removed)


def _keyed(column, mac):
    """(keyed hash, rows) of each distinct id in COLUMN, normalised as the upload indexed them."""
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    vc = pc.value_counts(column.drop_null())
    values, counts = vc.field("values"), vc.field("counts").to_pylist()
    if pc.all(pc.string_is_ascii(values)).as_py() is not False:
        texts = pc.ascii_lower(pc.ascii_trim_whitespace(values)).to_pylist()
    else:
        texts = [normalise_subject_id(v) for v in values.to_pylist()]
    return [(mac(t.encode()), n) for t, n in zip(texts, counts, strict=True) if t]


_MOD = 1 << 256


def index_digest(pairs) -> str:
    """An order-free digest of (keyed hash, rows) pairs: sum of rows x hash mod 2^256, hex.

    The keyed hashes are HMAC-SHA256 outputs, uniform already, so each is its own summand.

    The predecessor's index entries (less the person's) and the successor's rows give the same
    digest exactly when every other person keeps the same number of rows — checked in bounded
    memory, without holding a counter of every subject.
    """
    total = 0
    for key, rows in pairs:
        total += rows * int(key, 16)
    return f"{total % _MOD:064x}"


@dataclass(frozen=True)
class SuccessorContent:
    row_count: int
    subject_rows: int  # rows whose keyed hash is the person's
    schema: list
    index_digest: str  # index_digest() of every other person's (keyed hash, rows)


def read_successor(source, *, file_format: str, subject_column: str, subject_key: str, index_key: bytes) -> SuccessorContent:
    """Read a written successor back (SOURCE() opens its decrypted plaintext) and count what it holds.

    One streaming pass over the subject column; memory is one block, whatever the size.
    """
    mac = hmac_sha256_hex(index_key)
    rows = person = 0
    total = 0
    try:
        if file_format == "csv":
            schema = pacsv.open_csv(source(), read_options=pacsv.ReadOptions(block_size=BLOCK)).schema
        else:
            schema = pq.ParquetFile(source()).schema_arrow
        for column in _subject_batches(source, file_format, subject_column):
            rows += len(column)
            for key, n in _keyed(column, mac):
                if key == subject_key:
                    person += n
                else:
                    total += n * int(key, 16)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise SnapshotInvalid(f"The successor cannot be read: {str(exc).splitlines()[0][:200]}") from None
    return SuccessorContent(
        row_count=rows, subject_rows=person, schema=[{"name": f.name, "type": str(f.type)} for f in schema],
        index_digest=f"{total % _MOD:064x}",
    )
