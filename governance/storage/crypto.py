"""Authenticated encryption of snapshot streams: AES-256-GCM in chunks, bounded memory.

File format (all integers big-endian)::

    b"CUSTOSE1" || nonce_prefix (8 bytes) || chunk*
    chunk = length (4 bytes) || AES-GCM(data key, nonce_prefix || counter (4 bytes),
                                         plaintext <= 1 MiB, aad = header || counter || final)

The counter and the final-chunk flag are authenticated, so chunks cannot be reordered,
dropped or the file truncated without decryption failing. Memory stays bounded by one chunk.
"""

import hashlib
import io
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CUSTOSE1"
CHUNK = 1024 * 1024
HEADER_LEN = len(MAGIC) + 8


class StreamTooLarge(ValueError):
    """The stream holds more bytes than the caller allows."""


class SnapshotUnreadable(Exception):
    """The snapshot cannot be decrypted: its data key was destroyed, or the file was altered."""


def new_data_key() -> bytes:
    """A fresh AES-256 data key for one snapshot."""
    return AESGCM.generate_key(bit_length=256)


def _nonce(prefix: bytes, counter: int) -> bytes:
    return prefix + struct.pack(">I", counter)


def _aad(header: bytes, counter: int, final: bool) -> bytes:
    return header + struct.pack(">IB", counter, 1 if final else 0)


@dataclass
class EncryptResult:
    sha256: str  # of the plaintext
    size: int  # plaintext bytes


def encrypt_stream(src, dst, data_key: bytes, *, max_bytes: int | None = None) -> EncryptResult:
    """Encrypt the file object SRC into DST chunk by chunk, hashing the plaintext on the way.

    Raises StreamTooLarge when SRC holds more than MAX_BYTES.
    """
    aes = AESGCM(data_key)
    header = MAGIC + os.urandom(8)
    dst.write(header)
    digest = hashlib.sha256()
    size = 0
    counter = 0
    chunk = _read_full(src, CHUNK)
    while True:
        nxt = _read_full(src, CHUNK) if len(chunk) == CHUNK else b""
        final = not nxt
        digest.update(chunk)
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise StreamTooLarge(f"The stream is larger than the limit of {max_bytes} bytes.")
        ct = aes.encrypt(_nonce(header[len(MAGIC) :], counter), chunk, _aad(header, counter, final))
        dst.write(struct.pack(">I", len(ct)))
        dst.write(ct)
        counter += 1
        if final:
            break
        chunk = nxt
    return EncryptResult(sha256=digest.hexdigest(), size=size)


def _read_full(src, n: int) -> bytes:
    """Read up to N bytes, looping over short reads (sockets, upload streams)."""
    parts, got = [], 0
    while got < n:
        part = src.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def decrypt_chunks(src, data_key: bytes):
    """Yield the plaintext chunks of the encrypted file object SRC, authenticating each."""
    header = src.read(HEADER_LEN)
    if len(header) != HEADER_LEN or not header.startswith(MAGIC):
        raise SnapshotUnreadable("Not a Custos encrypted snapshot.")
    aes = AESGCM(data_key)
    prefix = header[len(MAGIC) :]
    counter = 0
    length = src.read(4)
    while True:
        if len(length) != 4:
            raise SnapshotUnreadable("The snapshot is truncated.")
        (n,) = struct.unpack(">I", length)
        if n > CHUNK + 16:
            raise SnapshotUnreadable("The snapshot is corrupt (chunk too large).")
        ct = src.read(n)
        length = src.read(4)
        final = not length
        try:
            yield aes.decrypt(_nonce(prefix, counter), ct, _aad(header, counter, final))
        except InvalidTag:
            raise SnapshotUnreadable("The snapshot fails authentication (altered or truncated).") from None
        if final:
            return
        counter += 1


class EncryptingWriter(io.RawIOBase):
    """A writable file object that encrypts what is written into DST in the format above.

    For writers that push bytes (a Parquet writer, a CSV filter) rather than hand over a
    readable source. Every chunk but the last holds exactly ``CHUNK`` bytes, as
    ``encrypt_stream`` writes them, so ``DecryptingReader`` can seek in the result. ``close()``
    writes the final chunk; ``result`` then holds the plaintext's SHA-256 and size.
    """

    def __init__(self, dst, data_key: bytes):
        self._dst = dst
        self._aes = AESGCM(data_key)
        self._header = MAGIC + os.urandom(8)
        dst.write(self._header)
        self._buffer = bytearray()
        self._counter = 0
        self._digest = hashlib.sha256()
        self._size = 0
        self.result: EncryptResult | None = None

    def writable(self):
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self._buffer += data
        self._digest.update(data)
        self._size += len(data)
        # A chunk is written once more bytes follow it: the last chunk is only known at close().
        while len(self._buffer) > CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]), final=False)
            del self._buffer[:CHUNK]
        return len(data)

    def _emit(self, chunk: bytes, *, final: bool) -> None:
        ct = self._aes.encrypt(_nonce(self._header[len(MAGIC):], self._counter), chunk,
                               _aad(self._header, self._counter, final))
        self._dst.write(struct.pack(">I", len(ct)))
        self._dst.write(ct)
        self._counter += 1

    def tell(self) -> int:
        return self._size

    def close(self):
        if not self.closed and self.result is None:
            self._emit(bytes(self._buffer), final=True)
            self._buffer.clear()
            self.result = EncryptResult(sha256=self._digest.hexdigest(), size=self._size)
        super().close()


class DecryptingReader(io.RawIOBase):
    """A seekable, read-only view of the plaintext of an encrypted snapshot file SRC.

    Each chunk is authenticated as it is read; only one decrypted chunk is held, so a reader
    that seeks (Parquet reads its footer first) works in bounded memory and without the
    plaintext ever touching the disk.
    """

    def __init__(self, src, data_key: bytes):
        self._src = src
        self._aes = AESGCM(data_key)
        src.seek(0)
        self._header = src.read(HEADER_LEN)
        if len(self._header) != HEADER_LEN or not self._header.startswith(MAGIC):
            raise SnapshotUnreadable("Not a Custos encrypted snapshot.")
        total = src.seek(0, os.SEEK_END) - HEADER_LEN
        full = 4 + CHUNK + 16
        self._chunks = max(1, -(-total // full))
        last = total - (self._chunks - 1) * full
        if last < 4 + 16:
            raise SnapshotUnreadable("The snapshot is truncated.")
        self._size = (self._chunks - 1) * CHUNK + last - 4 - 16
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self):
        return True

    def close(self):
        if not self.closed:
            self._src.close()
        super().close()

    def seekable(self):
        return True

    def seek(self, offset, whence=os.SEEK_SET):
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self):
        return self._pos

    def size(self):
        return self._size

    def _chunk(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        self._src.seek(HEADER_LEN + index * (4 + CHUNK + 16))
        (n,) = struct.unpack(">I", self._src.read(4))
        final = index == self._chunks - 1
        if n > CHUNK + 16 or (not final and n != CHUNK + 16):
            raise SnapshotUnreadable("The snapshot is corrupt (a chunk has the wrong size).")
        try:
            plain = self._aes.decrypt(_nonce(self._header[len(MAGIC):], index), self._src.read(n),
                                      _aad(self._header, index, final))
        except InvalidTag:
            raise SnapshotUnreadable("The snapshot fails authentication (altered or truncated).") from None
        self._cached = (index, plain)
        return plain

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, n=-1) -> bytes:
        if n is None or n < 0:
            n = self._size - self._pos
        parts = []
        while n > 0 and self._pos < self._size:
            index, offset = divmod(self._pos, CHUNK)
            data = self._chunk(index)[offset: offset + n]
            parts.append(data)
            self._pos += len(data)
            n -= len(data)
        return b"".join(parts)

# --- the store ------------------------------------------------------------------------------
