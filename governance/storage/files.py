"""Where stored snapshots live under the storage root, and writing and removing them.

Names are random, so a file name reveals nothing about the snapshot it holds.
"""

import secrets
from pathlib import Path

from django.conf import settings

from .crypto import EncryptResult, encrypt_stream, new_data_key

SNAPSHOT_DIR = "snapshots"


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
    data_key = new_data_key()
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
