"""Keys of the snapshot store and the subject index: loaded from settings, never stored.

The master key (``CUSTOS_MASTER_KEY``, base64, or the file ``CUSTOS_MASTER_KEY_FILE`` names)
wraps each snapshot's data key (AES key wrap, RFC 3394) and never enters the database.
Destroying a snapshot's wrapped data key makes every copy of its ciphertext unreadable;
rotating the master key afterwards makes database backups that still hold the wrapped key
useless too. The subject-index HMAC key (``CUSTOS_INDEX_KEY``) is loaded the same way.
"""

import base64
import binascii
import hashlib
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .crypto import SnapshotUnreadable


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
