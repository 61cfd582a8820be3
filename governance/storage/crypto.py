"""Authenticated encryption of snapshot streams: AES-256-GCM in chunks, bounded memory.

File format (all integers big-endian)::

    b"CUSTOSE1" || nonce_prefix (8 bytes) || chunk*
    chunk = length (4 bytes) || AES-GCM(data key, nonce_prefix || counter (4 bytes),
                                         plaintext <= 1 MiB, aad = header || counter || final)

The counter and the final-chunk flag are authenticated, so chunks cannot be reordered,
dropped or the file truncated without decryption failing. Memory stays bounded by one chunk.
"""

import hashlib
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


# --- the store ------------------------------------------------------------------------------
