"""The streaming redaction: CSV records kept byte for byte (quotes, newlines in fields, CRLF, blank
lines, a last line without its ending), Parquet schema and values kept; the person found as the index finds them."""

import io
import secrets

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from governance.storage import CHUNK, DecryptingReader, EncryptingWriter, decrypt_chunks, encrypt_stream, new_data_key
from governance.storage.redaction import index_digest, read_successor, redact_csv, redact_parquet, subject_positions
from governance.storage.subjects import subject_key
from governance.storage.tabular import inspect_snapshot

KEY = secrets.token_bytes(32)


def _encrypted(plain: bytes):
    data_key = new_data_key()
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plain), out, data_key)
    return out.getvalue(), data_key


def _source(blob, data_key):
    return lambda: DecryptingReader(io.BytesIO(blob), data_key)


def _redact_csv(plain: bytes, person: str):
    blob, data_key = _encrypted(plain)
    positions = subject_positions(_source(blob, data_key), file_format="csv", subject_column="id",
                                  subject_key=subject_key(person, key=KEY), index_key=KEY)
    out, new_key = io.BytesIO(), new_data_key()
    writer = EncryptingWriter(out, new_key)
    result = redact_csv(decrypt_chunks(io.BytesIO(blob), data_key), writer, positions=positions)
    writer.close()
    return b"".join(decrypt_chunks(io.BytesIO(out.getvalue()), new_key)), result, writer.result


def test_csv_records_are_kept_byte_for_byte():
    plain = (b'id,note,amount\r\n'
             b'a-1,"multi\r\nline, with ""quotes""",10\r\n'
             b'\r\n'
             b' A-2 ,plain,20\r\n'
             b'"a-3","x",30\r\n'
             b'a-2,"again\nhere",40\r\n'
             b'a-4,last,50')
    kept, result, written = _redact_csv(plain, "a-2")
    assert result.rows_read == 5 and result.rows_removed == 2
    assert kept == (b'id,note,amount\r\n'
                    b'a-1,"multi\r\nline, with ""quotes""",10\r\n'
                    b'\r\n'
                    b'"a-3","x",30\r\n'
                    b'a-4,last,50')
    assert written.size == len(kept)


def test_unicode_ids_are_normalised_as_the_index_does():
    plain = "id,v\nJOSÉ-1,1\nＡ-9,2\njosé-1 ,3\nb,4\n".encode()
    kept, result, _ = _redact_csv(plain, "josé-1")
    assert result.rows_removed == 2 and kept == "id,v\nＡ-9,2\nb,4\n".encode()
    kept, result, _ = _redact_csv(plain, "a-9")  # NFKC: the fullwidth Ａ is A
    assert result.rows_removed == 1


@pytest.mark.parametrize("rows", [10, 60_000])
def test_parquet_keeps_schema_and_values(rows):
    frame = pd.DataFrame({"id": [f"p-{i % 997}" for i in range(rows)], "x": range(rows),
                          "when": pd.date_range("2026-01-01", periods=rows, freq="min", tz="UTC")})
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    blob, data_key = _encrypted(buf.getvalue())
    source = _source(blob, data_key)
    person = subject_key("p-5", key=KEY)
    positions = subject_positions(source, file_format="parquet", subject_column="id", subject_key=person, index_key=KEY)
    out, new_key = io.BytesIO(), new_data_key()
    writer = EncryptingWriter(out, new_key)
    result = redact_parquet(source, writer, positions=positions)
    writer.close()
    back = pq.read_table(DecryptingReader(io.BytesIO(out.getvalue()), new_key))
    expected = pa.Table.from_pandas(frame[frame["id"] != "p-5"].reset_index(drop=True), preserve_index=False)
    assert back.schema.equals(pq.read_schema(io.BytesIO(buf.getvalue())))
    assert back.equals(expected.cast(back.schema))
    assert result.rows_removed == len(positions) == (frame["id"] == "p-5").sum()


def test_read_successor_counts_and_its_digest_matches_the_index():
    plain = b"id,v\n" + b"".join(f"s-{i % 50},{i}\n".encode() for i in range(5000))
    kept, _, _ = _redact_csv(plain, "s-7")
    blob, data_key = _encrypted(kept)
    content = read_successor(_source(blob, data_key), file_format="csv", subject_column="id",
                             subject_key=subject_key("s-7", key=KEY), index_key=KEY)
    assert content.row_count == 4900 and content.subject_rows == 0
    facts = inspect_snapshot(lambda: io.BytesIO(plain), file_format="csv", subject_column="id", index_key=KEY)
    others = [(k, n) for k, n in facts.subject_counts.items() if k != subject_key("s-7", key=KEY)]
    assert content.index_digest == index_digest(others)
    assert content.index_digest != index_digest(others[1:])


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_the_writer_and_the_seekable_reader_match_encrypt_stream(size):
    plain = secrets.token_bytes(size)
    data_key = new_data_key()
    out = io.BytesIO()
    writer = EncryptingWriter(out, data_key)
    for start in range(0, size, 300_001):
        writer.write(plain[start: start + 300_001])
    writer.close()
    assert b"".join(decrypt_chunks(io.BytesIO(out.getvalue()), data_key)) == plain
    reader = DecryptingReader(io.BytesIO(out.getvalue()), data_key)
    assert reader.read() == plain
    if size > 10:
        reader.seek(size - 5)
        assert reader.read(100) == plain[-5:]
        reader.seek(3)
        assert reader.read(7) == plain[3:10]


def test_the_seekable_reader_refuses_altered_or_truncated_files():
    from governance.storage import SnapshotUnreadable

    blob, data_key = _encrypted(secrets.token_bytes(2 * CHUNK + 10))
    altered = bytearray(blob)
    altered[CHUNK + 100] ^= 1
    with pytest.raises(SnapshotUnreadable):
        DecryptingReader(io.BytesIO(bytes(altered)), data_key).read()
    with pytest.raises(SnapshotUnreadable):  # the final chunk cut off: the one before it is not final
        DecryptingReader(io.BytesIO(blob[:-(10 + 16 + 4)]), data_key).read()
    with pytest.raises(SnapshotUnreadable):
        DecryptingReader(io.BytesIO(blob), new_data_key()).read(10)
