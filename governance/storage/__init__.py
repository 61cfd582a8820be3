"""The snapshot store's pure parts: keys, authenticated encryption, file layout, reading tabular
snapshots, subject-index hashing and safe loading of model artifacts. No ORM here: the rows that
name files and hold wrapped keys are read by selectors and written by services."""

from .crypto import (
    CHUNK,
    HEADER_LEN,
    MAGIC,
    DecryptingReader,
    EncryptingWriter,
    EncryptResult,
    SnapshotUnreadable,
    StreamTooLarge,
    decrypt_chunks,
    encrypt_stream,
    new_data_key,
)
from .files import SNAPSHOT_DIR, new_snapshot_path, snapshot_remove, snapshot_write, storage_root
from .keys import (
    generate_key_file,
    key_id,
    load_secret_key,
    master_key,
    master_keys,
    pending_master_key_path,
    unwrap_data_key,
    wrap_data_key,
)

__all__ = [
    "CHUNK",
    "HEADER_LEN",
    "MAGIC",
    "SNAPSHOT_DIR",
    "DecryptingReader",
    "EncryptingWriter",
    "EncryptResult",
    "SnapshotUnreadable",
    "StreamTooLarge",
    "decrypt_chunks",
    "encrypt_stream",
    "generate_key_file",
    "key_id",
    "load_secret_key",
    "master_key",
    "master_keys",
    "new_data_key",
    "new_snapshot_path",
    "pending_master_key_path",
    "snapshot_remove",
    "snapshot_write",
    "storage_root",
    "unwrap_data_key",
    "wrap_data_key",
]
