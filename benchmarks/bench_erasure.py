"""Erasure benchmarks (issue 11): discovery across 1,000 snapshots, rewriting a 1 GB snapshot.

    .venv/bin/python -m benchmarks bench_erasure     # BENCH_ERASURE_GB=1 sets the snapshot size (0: skip)

1. Discovery: one person held by 1,000 stored snapshots, with 10^6 subject-index rows in all
   (the person's 1,000 and 999 other people per snapshot), on a throw-away test database
   (SQLite in memory unless DATABASE_URL says otherwise). The registry rows and index entries
   are inserted directly (discovery opens no file); the figure is ``selectors.erasure.discovery``
   plus ``rules.erasure.plan``, the median of 20 runs. Target: under 50 ms.
2. Rewrite of one encrypted CSV snapshot of BENCH_ERASURE_GB GB (default 1) that holds the
   person in 3 rows, each way in its own process (peak RSS is VmHWM, its own):
   - Custos: ``storage.redaction.subject_positions`` (pass 1: the subject column, keyed hashes)
     + ``redact_csv`` into an ``EncryptingWriter`` under a new key (pass 2: records byte for
     byte), then ``read_successor`` (the verification pass) timed separately;
   - bare: decrypt + re-encrypt the same bytes in a stream (no parsing at all);
   - naive: decrypt it all into memory, ``pandas.read_csv``, filter on the keyed hash of the
     normalised id, ``to_csv``, encrypt.
   Targets: rewrite >= 0.7x the bare stream's speed; peak RSS < 400 MB.
"""

import base64
import hashlib
import hmac
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GB = float(os.environ.get("BENCH_ERASURE_GB", 1))
INDEX_KEY = b"bench-erasure-index-key-32-bytes"
DATA_KEY = bytes(range(32))
PERSON = "applicant-target"
PERSON_ROWS = (7, 1_000_003, 20_000_001)  # row positions that hold the person (those beyond the size are skipped)


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _django(tmp: Path):
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_registry import _django as setup

    setup(tmp)


# --- 1. discovery ------------------------------------------------------------------------------


def bench_discovery(snapshots=1000, others=999):
    from django.db import connection
    from django.utils import timezone

    from governance.models import BusinessUnit, Dataset, DatasetVersion, ErasureRequest, SnapshotKey, SubjectIndexEntry
    from governance.rules import erasure as rules
    from governance.selectors.erasure import discovery, holds_for
    from governance.storage.subjects import subject_key

    unit = BusinessUnit.objects.create(name="Bench", slug="bench")
    dataset = Dataset.objects.create(business_unit=unit, name="logged")
    t = time.perf_counter()
    versions = DatasetVersion.objects.bulk_create([
        DatasetVersion(dataset=dataset, version=f"v{i}", storage="stored", file_format="csv", sha256="0" * 64,
                       row_count=others + 1, subject_column="applicant_id", stored_path=f"snapshots/x/{i}.enc")
        for i in range(snapshots)
    ])
    SnapshotKey.objects.bulk_create([SnapshotKey(dataset_version=v, master_key_id="0" * 16, wrapped_key=b"k" * 40)
                                     for v in versions])
    person = subject_key(PERSON)
    table = connection.ops.quote_name(SubjectIndexEntry._meta.db_table)
    sql = f"INSERT INTO {table} (subject_key, dataset_version_id, row_count) VALUES (%s, %s, %s)"
    rows = [(hashlib.sha256(f"{v.pk}:{j}".encode()).hexdigest(), v.pk, 1) for v in versions for j in range(others)]
    rows += [(person, v.pk, 1) for v in versions]
    rows.sort()  # key order fills the unique index from one end (as the registry's upload does)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 50_000):
            cursor.executemany(sql, rows[start: start + 50_000])
    total = SubjectIndexEntry.objects.count()
    setup = time.perf_counter() - t
    request = ErasureRequest.objects.create(reference="ER-2026-0001", ground="b", subject_key=person,
                                            received_at=timezone.now(), first_due_at=timezone.now(),
                                            due_at=timezone.now(), state="identity_verified")
    times = []
    for _ in range(20):
        t = time.perf_counter()
        found = discovery(request)
        plan = rules.plan(reference=request.reference, discovery=found, holds=holds_for(request), now=timezone.now())
        times.append(time.perf_counter() - t)
    assert len(plan.snapshots) == snapshots
    median = statistics.median(times) * 1000
    print(f"discovery of one person across {snapshots:,} snapshots, {total:,} index rows "
          f"(set up in {setup:.1f} s, {connection.vendor}):")
    print(f"  discovery + plan: median {median:.1f} ms, min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
          f"over 20 runs (target < 50 ms): {'MET' if median < 50 else 'NOT MET'}")


# --- 2. rewrite ---------------------------------------------------------------------------------


def _generate(path: Path, size: int) -> int:
    """Write an encrypted CSV of about SIZE bytes (plaintext) to PATH; return its rows."""
    from governance.storage import EncryptingWriter

    person_rows = set(PERSON_ROWS)
    rows = 0
    with open(path, "wb") as dst:
        w = EncryptingWriter(dst, DATA_KEY)
        w.write(b"applicant_id,age,sex,credit_amount,purpose,risk\n")
        while w.tell() < size:
            lines = []
            for i in range(rows, rows + 100_000):
                who = PERSON if i in person_rows else f"applicant-{i:09d}"
                lines.append(f"{who},{18 + i % 60},{'female' if i % 2 else 'male'},{500 + (i * 37) % 15000},"
                             f"{'car' if i % 3 else 'radio/TV'},{i % 2}\n")
            w.write("".join(lines).encode())
            rows += 100_000
        w.close()
    return rows


def _source(path):
    from governance.storage import DecryptingReader

    return lambda: DecryptingReader(open(path, "rb"), DATA_KEY)


def _child(kind: str, folder: str):
    folder = Path(folder)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    sys.path.insert(0, str(ROOT))
    from governance.storage import DecryptingReader, EncryptingWriter, decrypt_chunks, new_data_key
    from governance.storage.redaction import read_successor, redact_csv, subject_positions
    from governance.storage.subjects import subject_key

    src = folder / "snapshot.enc"
    person = subject_key(PERSON, key=INDEX_KEY)
    base = _peak_mb()
    if kind == "custos":
        t = time.perf_counter()
        positions = subject_positions(_source(src), file_format="csv", subject_column="applicant_id",
                                      subject_key=person, index_key=INDEX_KEY)
        pass1 = time.perf_counter() - t
        key = new_data_key()
        with open(folder / "successor.enc", "wb") as dst, open(src, "rb") as fh:
            w = EncryptingWriter(dst, key)
            result = redact_csv(decrypt_chunks(fh, DATA_KEY), w, positions=positions)
            w.close()
        rewrite = time.perf_counter() - t
        t = time.perf_counter()
        content = read_successor(lambda: DecryptingReader(open(folder / "successor.enc", "rb"), key),
                                 file_format="csv", subject_column="applicant_id", subject_key=person,
                                 index_key=INDEX_KEY)
        verify = time.perf_counter() - t
        assert content.subject_rows == 0 and content.row_count == result.rows_read - result.rows_removed
        print(f"{rewrite:.3f} {pass1:.3f} {verify:.3f} {result.rows_removed} {base:.0f} {_peak_mb():.0f}")
    elif kind == "bare":
        t = time.perf_counter()
        with open(folder / "bare.enc", "wb") as dst, open(src, "rb") as fh:
            w = EncryptingWriter(dst, new_data_key())
            for chunk in decrypt_chunks(fh, DATA_KEY):
                w.write(chunk)
            w.close()
        print(f"{time.perf_counter() - t:.3f} {base:.0f} {_peak_mb():.0f}")
    else:  # naive
        import pandas as pd

        from governance.storage import encrypt_stream
        from governance.storage.subjects import normalise_subject_id

        t = time.perf_counter()
        with open(src, "rb") as fh:
            plain = b"".join(decrypt_chunks(fh, DATA_KEY))
        frame = pd.read_csv(io.BytesIO(plain), dtype={"applicant_id": str})
        del plain
        keys = frame["applicant_id"].map(
            lambda v: hmac.digest(INDEX_KEY, normalise_subject_id(v).encode(), "sha256").hex())
        frame = frame[keys != person]
        out = frame.to_csv(index=False).encode()
        with open(folder / "naive.enc", "wb") as dst:
            encrypt_stream(io.BytesIO(out), dst, new_data_key())
        print(f"{time.perf_counter() - t:.3f} {base:.0f} {_peak_mb():.0f}")


def _run(kind, folder):
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_erasure", "--child", kind, str(folder)],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1:] or ["failed"]
    return out.stdout.split(), None


def bench_rewrite(tmp: Path):
    size = int(GB * 1e9)
    t = time.perf_counter()
    rows = _generate(tmp / "snapshot.enc", size)
    print(f"\nrewrite one encrypted CSV snapshot: {size / 1e9:.2f} GB, {rows:,} rows, the person in "
          f"{sum(1 for r in PERSON_ROWS if r < rows)} (generated in {time.perf_counter() - t:.0f} s):")
    custos, err = _run("custos", tmp)
    bare, bare_err = _run("bare", tmp)
    if custos is None or bare is None:
        print(f"  failed: {err or bare_err}")
        return
    rewrite, pass1, verify, removed, base, peak = custos
    b_time, b_base, b_peak = bare
    speed = float(b_time) / float(rewrite)
    print(f"  Custos rewrite (pass 1 subject column {float(pass1):.1f} s + pass 2 records): {float(rewrite):6.1f} s "
          f"{size / 1e6 / float(rewrite):6.0f} MB/s, {removed} rows removed, peak RSS {float(peak):.0f} MB "
          f"(at start {float(base):.0f} MB)")
    print(f"  Custos verification pass (read back, keyed hashes, digest): {float(verify):6.1f} s")
    print(f"  bare decrypt + encrypt stream:                        {float(b_time):6.1f} s "
          f"{size / 1e6 / float(b_time):6.0f} MB/s, peak RSS {float(b_peak):.0f} MB")
    print(f"  rewrite speed / bare stream speed: {speed:.2f}x (target >= 0.7x): {'MET' if speed >= 0.7 else 'NOT MET'}")
    print(f"  peak RSS {float(peak):.0f} MB (target < 400 MB): {'MET' if float(peak) < 400 else 'NOT MET'}")
    if os.environ.get("BENCH_ERASURE_NAIVE", "1") != "0":
        naive, n_err = _run("naive", tmp)
        if naive is None:
            print(f"  naive (decrypt all, pandas, re-encrypt): failed ({n_err})")
        else:
            n_time, n_base, n_peak = naive
            print(f"  naive (decrypt all, pandas filter by keyed hash, re-encrypt): {float(n_time):6.1f} s, "
                  f"peak RSS {float(n_peak):.0f} MB ({float(n_peak) / float(peak):.1f}x Custos)")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _django(tmp)
        from django.conf import settings
        from django.test.utils import setup_databases, teardown_databases

        settings.CUSTOS_INDEX_KEY = base64.b64encode(INDEX_KEY).decode()
        old = setup_databases(verbosity=0, interactive=False)
        try:
            bench_discovery()
        finally:
            teardown_databases(old, verbosity=0)
        if GB > 0:
            bench_rewrite(tmp)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        main()
