"""Post-market monitoring: ingest a 10^7-row batch with 30 features into weekly window
aggregates next to a bare numpy histogram pass over the same columns read the same way; the
evaluation of 52 windows x 30 features; and the same drift figures from Evidently's
DataDriftPreset on the same rows.

The batch is generated first (not timed) into a Parquet file in a temporary folder: 30
numeric features (normal, log-normal, Poisson counts, uniform; five shifted and one scaled
from week 26 on), a score, a sensitive attribute, a zoned timestamp spreading the rows evenly
over 52 weeks, and a prediction id. The reference is 100,000 rows of the same generator
without the shift. Each ingest runs in its own process, so its peak RSS (VmHWM) is its own.

Evidently is installed in a throwaway virtualenv that this benchmark creates in its temporary
folder (``python -m venv`` + ``pip install evidently "pandas<3" pyarrow``: Evidently 0.7 does not
import under pandas 3), never in the project; if that fails, the output says so.

Run: ``flock /work/heavy.lock python -m benchmarks bench_monitoring``.
Environment: BENCH_MONITORING_ROWS (default 10,000,000), BENCH_EVIDENTLY_WINDOWS (default 4:
Evidently takes tens of seconds per window of ~190,000 rows on two cores, so by default it
runs on the first four windows and the per-window figure is compared; 0 skips it).
"""

import hashlib
import hmac
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROWS = int(os.environ.get("BENCH_MONITORING_ROWS", 10_000_000))
EVIDENTLY_WINDOWS = int(os.environ.get("BENCH_EVIDENTLY_WINDOWS", 4))
FEATURES = [f"f{i:02d}" for i in range(30)]
WINDOWS = 52
REFERENCE_ROWS = 100_000
CHUNK_ROWS = 262_144
SEED = 20261201
ORIGIN = datetime(2025, 1, 6, tzinfo=timezone.utc)  # a Monday
WEEK = timedelta(days=7)
KEY = b"bench-monitoring-join-key-32-byt"
COLUMNS = ["ts", *FEATURES, "score", "sex"]


def _features(rng, n, drifted):
    """The 30 features of N rows; DRIFTED (bool per row) shifts f00-f04 and scales f10."""
    out = {}
    for i in range(10):
        out[f"f{i:02d}"] = rng.normal(i, 1 + i / 10, n) + np.where(drifted, 0.3 * (1 + i / 10), 0.0) * (i < 5)
    for i in range(10, 20):
        out[f"f{i:02d}"] = rng.lognormal(0, 0.5, n) * (np.where(drifted, 1.3, 1.0) if i == 10 else 1.0)
    for i in range(20, 25):
        out[f"f{i:02d}"] = rng.poisson(3 + i - 20, n).astype(float)
    for i in range(25, 30):
        out[f"f{i:02d}"] = rng.uniform(0, 100, n)
    z = (out["f00"] - 0) / 1 * 0.8 + (out["f20"] - 3) / 1.7 * 0.5 + rng.normal(0, 1, n)
    out["score"] = 1 / (1 + np.exp(-z))
    out["sex"] = np.where(rng.random(n) < 0.4, "female", "male")
    return out


def _generate(path: Path):
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    step_us = WINDOWS * WEEK // timedelta(microseconds=1) // ROWS  # rows evenly spread over the 52 weeks
    origin_us = (ORIGIN - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    writer = None
    for start in range(0, ROWS, CHUNK_ROWS):
        n = min(CHUNK_ROWS, ROWS - start)
        rng = np.random.default_rng([SEED, start])
        position = np.arange(start, start + n)
        ts_us = origin_us + position * step_us
        drifted = ts_us >= origin_us + 26 * (WEEK // timedelta(microseconds=1))
        columns = {"ts": pa.array(ts_us, pa.timestamp("us", tz="UTC"))}
        columns.update({k: pa.array(v) for k, v in _features(rng, n, drifted).items()})
        digits = pc.utf8_lpad(pc.cast(pa.array(position), pa.string()), 10, "0")
        columns["pid"] = pc.binary_join_element_wise("p", digits, "")
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=CHUNK_ROWS)
    writer.close()


def _reference_frame():
    import pandas as pd

    rng = np.random.default_rng([SEED, 1])
    frame = pd.DataFrame(_features(rng, REFERENCE_ROWS, np.zeros(REFERENCE_ROWS, bool)))
    frame["risk"] = (rng.random(REFERENCE_ROWS) < frame["score"]).astype(int)
    return frame


def _spec():
    from governance.monitoring.aggregates import GroupAttribute, ProfileSpec

    return ProfileSpec(numeric=tuple(FEATURES), score="score", threshold=0.5, label="risk",
                       groups=(GroupAttribute("sex"),))


def _peak_mb():
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_custos(batch: str, profile: str, with_join: bool, out: str, queue):
    """Runs in its own process: ingest BATCH; puts (seconds, peak MB, start MB, extra)."""
    import pyarrow.parquet as pq

    from governance.monitoring.aggregates import ReferenceProfile
    from governance.monitoring.ingest import JOIN_SCHEMA, WindowSchedule, ingest_batch

    reference = ReferenceProfile.from_json(json.loads(Path(profile).read_text()))
    schedule = WindowSchedule(origin=ORIGIN, length=WEEK, accept_until=ORIGIN + WINDOWS * WEEK)
    base = _peak_mb()
    writer = pq.ParquetWriter(out, JOIN_SCHEMA) if with_join else None
    started = time.perf_counter()
    outcome = ingest_batch(batch, file_format="parquet", reference=reference, schedule=schedule, timestamp_column="ts",
                           prediction_id_column="pid" if with_join else None, key=KEY if with_join else None,
                           join_sink=writer.write_table if writer else None, chunk_rows=CHUNK_ROWS)
    if writer:
        writer.close()
    seconds = time.perf_counter() - started
    windows = [w.to_json() for w in outcome.windows.values()]
    queue.put((seconds, _peak_mb(), base, {"rows": outcome.rows_accepted, "windows": windows,
                                           "join_records": outcome.join_record_count}))


def _reader(batch: str):
    """The Parquet reader as ingest_batch opens it (no pre-buffering: a row group at a time)."""
    import pyarrow.parquet as pq

    from governance.monitoring.ingest import PARQUET_BUFFER

    return pq.ParquetFile(batch, pre_buffer=False, buffer_size=PARQUET_BUFFER)


def _child_bare_histogram(batch: str, profile: str, queue):
    """Runs in its own process: read the same columns the same way, np.histogram each numeric
    column on the reference deciles; the digest of the file is taken too, as Custos does."""
    doc = json.loads(Path(profile).read_text())
    deciles = {}
    for name in FEATURES + ["score"]:
        sec = doc["numeric"][name] if name in doc["numeric"] else doc["score"]
        deciles[name] = np.array(sec["edges"])[sec["decile_edges"]]
    base = _peak_mb()
    started = time.perf_counter()
    h = hashlib.sha256()
    with open(batch, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    totals = {name: np.zeros(len(e) - 1, np.int64) for name, e in deciles.items()}
    rows = 0
    for chunk in _reader(batch).iter_batches(batch_size=CHUNK_ROWS, columns=COLUMNS, use_threads=False):
        rows += chunk.num_rows
        for name, edges in deciles.items():
            totals[name] += np.histogram(chunk.column(name).to_numpy(), bins=edges)[0]
    queue.put((time.perf_counter() - started, _peak_mb(), base, {"rows": rows}))


def _child_bare_hmac(batch: str, queue):
    """Runs in its own process: HMAC-SHA256 of every prediction id, read the same way."""
    base = _peak_mb()
    started = time.perf_counter()
    n = 0
    for chunk in _reader(batch).iter_batches(batch_size=CHUNK_ROWS, columns=["pid"], use_threads=False):
        for pid in chunk.column("pid").to_pylist():
            hmac.new(KEY, pid.encode(), "sha256").hexdigest()
            n += 1
    queue.put((time.perf_counter() - started, _peak_mb(), base, {"rows": n}))


def _in_child(target, *args):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


EVIDENTLY_SCRIPT = r'''
import json, sys, time
import pandas as pd, pyarrow.parquet as pq, pyarrow.compute as pc
from datetime import datetime, timedelta, timezone
batch, reference, windows, origin = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
features = [f"f{i:02d}" for i in range(30)]
import evidently
try:
    from evidently import Report
    from evidently.presets import DataDriftPreset
    legacy = False
except ImportError:
    from evidently.report import Report
    from evidently.metric_preset import DataDriftPreset
    legacy = True
ref = pd.read_parquet(reference, columns=features)
origin = datetime.fromisoformat(origin)
file = pq.ParquetFile(batch)
out = {"version": evidently.__version__, "windows": [], "load_s": 0.0, "drift_s": 0.0}
for k in range(windows):
    start, end = origin + k * timedelta(days=7), origin + (k + 1) * timedelta(days=7)
    t0 = time.perf_counter()
    table = pq.read_table(batch, columns=features + ["ts"], filters=[("ts", ">=", start), ("ts", "<", end)])
    cur = table.select(features).to_pandas()
    t1 = time.perf_counter()
    report = Report([DataDriftPreset()])
    if legacy:
        report.run(reference_data=ref, current_data=cur)
        result = report.as_dict()
    else:
        result = report.run(cur, ref).dict()
    t2 = time.perf_counter()
    out["load_s"] += t1 - t0
    out["drift_s"] += t2 - t1
    values = {}
    for metric in result.get("metrics", []):
        name = str(metric.get("metric_name") or metric.get("metric_id") or metric.get("metric") or "")
        value = metric.get("value")
        if "ValueDrift" in name and "column=" in name:
            column = name.split("column=")[1].split(",")[0].split(")")[0]
            try:
                values[column] = float(value)
            except (TypeError, ValueError):
                values[column] = None
        elif legacy and isinstance(metric.get("result"), dict) and "drift_by_columns" in metric["result"]:
            for column, info in metric["result"]["drift_by_columns"].items():
                values[column] = info.get("drift_score")
    out["windows"].append({"rows": len(cur), "values": values})
print(json.dumps(out))
'''


def _evidently(tmp: Path, batch: Path, reference_path: Path):
    """Evidently in a throwaway venv: (setup seconds, result dict) or (None, reason)."""
    venv = tmp / "evidently-venv"
    started = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        # Evidently 0.7 imports a pandas internal that pandas 3 removed: pin pandas < 3 there.
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "evidently", "pandas<3", "pyarrow"], check=True,
                       capture_output=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        tail = getattr(exc, "stderr", b"") or b""
        return None, f"could not install Evidently in a throwaway venv ({type(exc).__name__}): {tail[-300:]!r}"
    setup = time.perf_counter() - started
    script = tmp / "evidently_drift.py"
    script.write_text(EVIDENTLY_SCRIPT)
    run = subprocess.run([str(venv / "bin" / "python"), str(script), str(batch), str(reference_path),
                          str(EVIDENTLY_WINDOWS), ORIGIN.isoformat()], capture_output=True, text=True)
    if run.returncode:
        return None, f"Evidently ran but failed: {run.stderr[-500:]}"
    return setup, json.loads(run.stdout.strip().splitlines()[-1])


def main():
    from governance.monitoring.aggregates import ReferenceProfile, WindowAggregate
    from governance.monitoring.statistics import Limits, windows_evaluate

    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}, {datetime.now(timezone.utc).isoformat(timespec='minutes')}")
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as folder:
        tmp = Path(folder)
        batch = tmp / "batch.parquet"
        started = time.perf_counter()
        _generate(batch)
        print(f"batch: {ROWS:,} rows x {len(FEATURES)} features, {batch.stat().st_size / 1e9:.2f} GB Parquet, "
              f"generated in {time.perf_counter() - started:.0f} s (not timed below)")
        frame = _reference_frame()
        reference_path = tmp / "reference.parquet"
        frame.to_parquet(reference_path)
        started = time.perf_counter()
        reference = ReferenceProfile.from_frame(frame, _spec())
        print(f"reference profile of {REFERENCE_ROWS:,} rows x 31 numeric columns: {time.perf_counter() - started:.2f} s, "
              f"{len(json.dumps(reference.to_json())) / 1e3:.0f} kB of JSON")
        profile_path = tmp / "profile.json"
        profile_path.write_text(json.dumps(reference.to_json()))
        del frame

        bare_s, bare_peak, bare_base, _ = _in_child(_child_bare_histogram, str(batch), str(profile_path))
        custos_s, custos_peak, custos_base, info = _in_child(_child_custos, str(batch), str(profile_path), False,
                                                            str(tmp / "join.parquet"))
        print("\ningest (aggregates only), same columns, Parquet record batches of 262,144 rows:")
        print(f"  Custos ingest_batch:       {custos_s:7.1f} s  {ROWS / custos_s:12,.0f} rows/s  "
              f"peak RSS {custos_peak:6.0f} MB (process at start {custos_base:.0f} MB)")
        print(f"  bare np.histogram pass:    {bare_s:7.1f} s  {ROWS / bare_s:12,.0f} rows/s  "
              f"peak RSS {bare_peak:6.0f} MB (process at start {bare_base:.0f} MB)")
        print(f"  Custos speed / bare speed: {bare_s / custos_s:.2f}x (target >= 0.5x)")
        join_s, join_peak, join_base, join_info = _in_child(_child_custos, str(batch), str(profile_path), True,
                                                           str(tmp / "join.parquet"))
        hmac_s, hmac_peak, _, _ = _in_child(_child_bare_hmac, str(batch))
        print("ingest with join records (HMAC-SHA256 of every prediction id, written to Parquet):")
        print(f"  Custos ingest_batch:       {join_s:7.1f} s  {ROWS / join_s:12,.0f} rows/s  "
              f"peak RSS {join_peak:6.0f} MB (process at start {join_base:.0f} MB), "
              f"{join_info['join_records']:,} join records")
        print(f"  bare hmac.new loop alone:  {hmac_s:7.1f} s  {ROWS / hmac_s:12,.0f} rows/s")
        print(f"  Custos / (bare histogram + bare HMAC): {(bare_s + hmac_s) / join_s:.2f}x")

        windows = [WindowAggregate.from_json(doc, reference) for doc in info["windows"]]
        assert len(windows) == WINDOWS and sum(w.rows for w in windows) == ROWS
        limits = Limits()
        times = []
        for _ in range(3):
            started = time.perf_counter()
            docs = windows_evaluate(windows, reference, limits=limits)
            times.append(time.perf_counter() - started)
        alerts = sum(1 for d in docs for f in d["statistics"]
                     if f["statistic"] == "wasserstein_normalised" and f["verdict"] == "alert")
        print(f"\nevaluate {WINDOWS} windows x {len(FEATURES)} features (+ score, integrity, fairness with "
              f"{limits.resamples} bootstrap resamples): best {min(times):.2f} s of 3 (target < 2 s); "
              f"{alerts} Wasserstein alerts")

        if EVIDENTLY_WINDOWS <= 0:
            print("Evidently: skipped (BENCH_EVIDENTLY_WINDOWS=0)")
            return
        setup, result = _evidently(tmp, batch, reference_path)
        if setup is None:
            print(f"Evidently: {result}")
            return
        k = len(result["windows"])
        ours = {}
        for doc in docs[:k]:
            ours[doc["window"]["start"]] = {f["column"]: f for f in doc["statistics"]
                                            if f["statistic"] == "wasserstein_normalised" and f["role"] == "feature"}
        diffs, inside, compared = [], 0, 0
        for doc, theirs in zip(docs[:k], result["windows"]):
            for column, value in theirs["values"].items():
                figure = ours[doc["window"]["start"]].get(column)
                if figure is None or value is None:
                    continue
                compared += 1
                diffs.append(abs(figure["value"] - value))
                lower, upper = figure["bounds"]
                inside += lower - 1e-9 <= value <= (upper if upper is not None else np.inf) + 1e-9
        print(f"Evidently {result['version']} DataDriftPreset on the same rows ({k} windows, reference "
              f"{REFERENCE_ROWS:,} rows): drift {result['drift_s']:.1f} s (+ {result['load_s']:.1f} s reading "
              f"the windows' rows); venv + install {setup:.0f} s")
        if compared:
            print(f"  per-column drift scores compared: {compared}; max |Custos W - Evidently W| = {max(diffs):.2e}; "
                  f"Evidently's value inside Custos's bounds: {inside}/{compared}")
        else:
            print("  (could not read per-column drift scores from Evidently's output)")
        per_window_custos = min(times) / WINDOWS
        per_window_evidently = result["drift_s"] / k
        print(f"  per window: Custos {per_window_custos * 1000:.1f} ms (from aggregates), Evidently "
              f"{per_window_evidently * 1000:.0f} ms (from rows): {per_window_evidently / per_window_custos:,.0f}x; "
              f"{WINDOWS} windows at that rate: Evidently {per_window_evidently * WINDOWS:.0f} s"
              f"{'' if k == WINDOWS else ' (extrapolated from ' + str(k) + ' windows)'}")


if __name__ == "__main__":
    main()
