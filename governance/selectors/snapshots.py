"""Read the content of a stored snapshot: its data key is unwrapped, its file decrypted in chunks."""

import io

from ..models import DatasetVersion, SnapshotKey
from ..storage import DecryptingReader, SnapshotUnreadable, decrypt_chunks, storage_root, unwrap_data_key


def _data_key(dataset_version) -> bytes:
    key = SnapshotKey.objects.filter(dataset_version=dataset_version).first()
    if key is None or key.wrapped_key is None:
        raise SnapshotUnreadable(f"The data key of dataset version {dataset_version.pk} has been destroyed.")
    return unwrap_data_key(key.wrapped_key, key.master_key_id)


def snapshot_chunks(dataset_version):
    """Yield the decrypted bytes of a stored snapshot, chunk by chunk (bounded memory)."""
    if dataset_version.storage != DatasetVersion.Storage.STORED:
        raise SnapshotUnreadable(f"Dataset version {dataset_version.pk} is not stored by Custos.")
    data_key = _data_key(dataset_version)
    with open(storage_root() / dataset_version.stored_path, "rb") as src:
        yield from decrypt_chunks(src, data_key)


def snapshot_source(dataset_version):
    """Return source(): each call opens a fresh seekable reader of the decrypted snapshot.

    For readers that seek (Parquet) or read twice; the plaintext stays in memory one chunk at a
    time and never touches the disk. Raises SnapshotUnreadable at once if the key is gone."""
    if dataset_version.storage != DatasetVersion.Storage.STORED:
        raise SnapshotUnreadable(f"Dataset version {dataset_version.pk} is not stored by Custos.")
    data_key = _data_key(dataset_version)
    path = storage_root() / dataset_version.stored_path

    def source():
        return DecryptingReader(open(path, "rb"), data_key)

    return source


def snapshot_bytes(dataset_version) -> bytes:
    """Return the whole decrypted snapshot (for snapshots that fit in memory)."""
    return b"".join(snapshot_chunks(dataset_version))


def snapshot_frame(dataset_version):
    """Decrypt and parse a stored snapshot into a pandas DataFrame.

    The subject column, when declared, is read as text so that ids such as ``0042`` keep
    their leading zeros.
    """
    import pandas as pd  # not at import time: pandas costs ~0.4 s at every Django start

    data = io.BytesIO(snapshot_bytes(dataset_version))
    if dataset_version.file_format == "parquet":
        return pd.read_parquet(data)
    dtype = {dataset_version.subject_column: str} if dataset_version.subject_column else None
    return pd.read_csv(data, dtype=dtype)
