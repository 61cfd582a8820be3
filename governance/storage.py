"""The encrypted snapshot store: each snapshot has its own AES-256-GCM data key.

A data key is wrapped (AES key wrap, RFC 3394) by the master key, which comes from
``CUSTOS_MASTER_KEY`` (base64) or the file named by ``CUSTOS_MASTER_KEY_FILE`` and never
enters the database. Destroying a snapshot's wrapped data key makes every copy of its
ciphertext unreadable, backups of the storage folder included.

File format (all integers big-endian)::

    b"CUSTOSE1" || nonce_prefix (8 bytes) || chunk*
    chunk = length (4 bytes) || AES-GCM(data key, nonce_prefix || counter (4 bytes),
                                         plaintext <= 1 MiB, aad = header || counter || final)

The counter and the final-chunk flag are authenticated, so chunks cannot be reordered,
dropped or the file truncated without decryption failing. Memory stays bounded by one chunk.
"""

import base64
import binascii
import hashlib
import io
import os
import secrets
import struct
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

MAGIC = b"CUSTOSE1"
CHUNK = 1024 * 1024
HEADER_LEN = len(MAGIC) + 8
SNAPSHOT_DIR = "snapshots"


class StreamTooLarge(ValueError):
    """The stream holds more bytes than the caller allows."""


class SnapshotUnreadable(Exception):
    """The snapshot cannot be decrypted: its data key was destroyed, or the file was altered."""


# --- keys ------------------------------------------------------------------------------------


def load_secret_key(name: str) -> bytes:
    """Return the 32-byte key NAME from settings (base64) or from the file NAME_FILE names."""
    path = getattr(settings, f"{name}_FILE", "")
    if path:
        p = Path(path)
        if not p.is_file():
            raise ImproperlyConfigured(f"{name}_FILE names a file that does not exist: {path}")
        text = _read_key_file(str(p), p.stat().st_mtime_ns)
    else:
        text = getattr(settings, name, "")
    if not text:
        raise ImproperlyConfigured(f"Neither {name} nor {name}_FILE is set.")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{name} is not base64.") from None
    if len(key) != 32:
        raise ImproperlyConfigured(f"{name} must be 32 bytes (base64 of 32 random bytes), got {len(key)}.")
    return key


@lru_cache(maxsize=8)
def _read_key_file(path: str, mtime_ns: int) -> str:
    return Path(path).read_text().strip()


def generate_key_file(path) -> Path:
    """Write 32 random bytes, base64, to PATH (mode 0600); refuse to overwrite."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x") as fh:  # "x": never overwrite a key
        fh.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    path.chmod(0o600)
    return path


def key_id(key: bytes) -> str:
    """A public name for a key: the first 8 bytes of its SHA-256, hex."""
    return hashlib.sha256(b"custos key id\n" + key).hexdigest()[:16]


def master_key() -> bytes:
    return load_secret_key("CUSTOS_MASTER_KEY")


def wrap_data_key(data_key: bytes, master: bytes | None = None) -> tuple[bytes, str]:
    """Return (wrapped key, master key id) under MASTER, by default the configured master key."""
    mk = master if master is not None else master_key()
    return aes_key_wrap(mk, data_key), key_id(mk)


def pending_master_key_path() -> Path | None:
    """Where a master key rotation keeps the new key until the rewrapping has committed."""
    path = settings.CUSTOS_MASTER_KEY_FILE
    return Path(f"{path}.new") if path else None


def master_keys() -> dict[str, bytes]:
    """The configured master key and, mid-rotation, the pending new one, by key id."""
    current = master_key()
    keys = {key_id(current): current}
    pending = pending_master_key_path()
    if pending is not None and pending.is_file():
        new = base64.b64decode(pending.read_text().strip())
        keys[key_id(new)] = new
    return keys


def unwrap_data_key(wrapped: bytes, master_key_id: str | None = None) -> bytes:
    """Unwrap a data key with the master key that wrapped it (MASTER_KEY_ID), or the current one."""
    keys = master_keys()
    mk = keys.get(master_key_id) if master_key_id else master_key()
    if mk is None:
        raise SnapshotUnreadable(f"The data key was wrapped by master key {master_key_id}, which is not configured.")
    try:
        return aes_key_unwrap(mk, bytes(wrapped))
    except InvalidUnwrap:
        raise SnapshotUnreadable("The data key does not unwrap with the configured master key.") from None


# --- encryption -----------------------------------------------------------------------------


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


def storage_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def new_snapshot_path() -> str:
    """A fresh relative path for a snapshot; names are random so they reveal nothing."""
    return f"{SNAPSHOT_DIR}/{secrets.token_hex(2)}/{secrets.token_hex(16)}.enc"


def snapshot_write(src, *, max_bytes: int | None = None) -> tuple[str, bytes, EncryptResult]:
    """Encrypt SRC into a new file under the storage root with a new data key.

    Return (relative path, data key, result). The caller wraps and keeps the data key, and
    removes the file (``snapshot_remove``) if its transaction fails.
    """
    data_key = AESGCM.generate_key(bit_length=256)
    rel = new_snapshot_path()
    path = storage_root() / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "xb") as dst:
            result = encrypt_stream(src, dst, data_key, max_bytes=max_bytes)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return rel, data_key, result


def snapshot_remove(rel: str) -> None:
    (storage_root() / rel).unlink(missing_ok=True)


class _KeepOnCommit:
    """The on_commit callback of a newly written file: running it marks the file as kept."""

    def __init__(self, state: dict):
        self.state = state

    def __call__(self):
        self.state["committed"] = True


def _remove_unless_committed(path: Path, state: dict) -> None:
    if not state["committed"]:
        path.unlink(missing_ok=True)


def remove_on_rollback(path) -> None:
    """Remove the file PATH unless the current transaction, a caller's outer one included,
    commits.

    Call it inside the atomic block that stores the row naming PATH. Django has no
    on-rollback hook, but it drops, unrun, the on_commit callbacks of a transaction or
    savepoint that rolls back; when the dropped callback is freed, its finalizer sees that it
    never ran and removes the file. After a commit the callback has run and the file stays.
    """
    state = {"committed": False}
    keep = _KeepOnCommit(state)
    weakref.finalize(keep, _remove_unless_committed, Path(path), state)
    transaction.on_commit(keep)


def _data_key(dataset_version) -> bytes:
    from .models import SnapshotKey

    key = SnapshotKey.objects.filter(dataset_version=dataset_version).first()
    if key is None or key.wrapped_key is None:
        raise SnapshotUnreadable(f"The data key of dataset version {dataset_version.pk} has been destroyed.")
    return unwrap_data_key(key.wrapped_key, key.master_key_id)


def snapshot_chunks(dataset_version):
    """Yield the decrypted bytes of a stored snapshot, chunk by chunk (bounded memory)."""
    if dataset_version.storage != "stored":
        raise SnapshotUnreadable(f"Dataset version {dataset_version.pk} is not stored by Custos.")
    data_key = _data_key(dataset_version)
    with open(storage_root() / dataset_version.stored_path, "rb") as src:
        yield from decrypt_chunks(src, data_key)


def snapshot_bytes(dataset_version) -> bytes:
    """Return the whole decrypted snapshot (for snapshots that fit in memory)."""
    return b"".join(snapshot_chunks(dataset_version))


def dataset_version_dataframe(dataset_version):
    """Decrypt and parse a stored snapshot into a pandas DataFrame.

    The subject column, when declared, is read as text so that ids such as ``0042`` keep
    their leading zeros.
    """
    import pandas as pd

    data = io.BytesIO(snapshot_bytes(dataset_version))
    if dataset_version.file_format == "parquet":
        return pd.read_parquet(data)
    dtype = {dataset_version.subject_column: str} if dataset_version.subject_column else None
    return pd.read_csv(data, dtype=dtype)
