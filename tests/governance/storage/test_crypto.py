"""The snapshot store's authenticated encryption (storage.crypto): round trips, tampering, limits."""

import io

import pytest

from governance import storage


def test_encrypt_round_trips_across_chunk_boundaries():
    key = bytes(range(32))
    for size in (0, 1, storage.CHUNK - 1, storage.CHUNK, storage.CHUNK + 1, 3 * storage.CHUNK + 17):
        plain = bytes((i * 7) % 251 for i in range(size))
        out = io.BytesIO()
        result = storage.encrypt_stream(io.BytesIO(plain), out, key)
        assert result.size == size
        out.seek(0)
        assert b"".join(storage.decrypt_chunks(out, key)) == plain


def test_truncated_reordered_or_altered_ciphertext_is_refused():
    key = bytes(32)
    plain = b"x" * (2 * storage.CHUNK + 5)
    out = io.BytesIO()
    storage.encrypt_stream(io.BytesIO(plain), out, key)
    data = out.getvalue()
    one_chunk = storage.HEADER_LEN + 4 + storage.CHUNK + 16
    for bad in (data[:one_chunk], data[:-1], data[:100] + bytes([data[100] ^ 1]) + data[101:]):
        with pytest.raises(storage.SnapshotUnreadable):
            b"".join(storage.decrypt_chunks(io.BytesIO(bad), key))
    with pytest.raises(storage.SnapshotUnreadable):
        b"".join(storage.decrypt_chunks(io.BytesIO(data), bytes([1]) * 32))


def test_size_limit_stops_the_stream():
    with pytest.raises(ValueError, match="limit"):
        storage.encrypt_stream(io.BytesIO(b"a" * 100), io.BytesIO(), bytes(32), max_bytes=99)
