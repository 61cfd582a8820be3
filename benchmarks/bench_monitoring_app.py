"""Monitoring through the Django app on PostgreSQL: 52 weekly windows x 30 features, each sent
as a pre-aggregated window through ``aggregate_ingest`` (service, lock, merge, ledger entry), then
closed by ``windows_close`` — every window evaluated, its digest signed into the ledger, its
alerts opened as findings. This is what Celery beat does, next to the pure evaluation of the
same windows (``windows_evaluate``, as ``bench_monitoring`` measures it).

The plan's reference is 20,000 rows of ``bench_monitoring``'s generator; each window 20,000
rows of it (f00-f04 shifted and f10 scaled from week 26). Runs in a scratch PostgreSQL database.

Run: ``python -m benchmarks bench_monitoring_app`` (about a minute on 2 cores).
"""

import json
import os
import sys
import time
from datetime import timedelta

import numpy as np

from benchmarks.ledger_support import run_module, scratch_database, setup_django

ROWS_PER_WINDOW = 20_000
REFERENCE_ROWS = 20_000


def _plan(reference):
    from governance.models import BusinessUnit, MLModel, ModelVersion, ReleaseRequest
    from governance.monitoring import policy as plans
    from governance.monitoring.models import MonitoringPlan, MonitoringPlanVersion
    from governance.services.releases import approval_policy_current
    from django.contrib.auth import get_user_model

    from benchmarks.bench_monitoring import ORIGIN

    unit = BusinessUnit.objects.create(name="Bench", slug="bench")
    model = MLModel.objects.create(business_unit=unit, name="bench", intended_purpose="bench", risk_tier="high",
                                   annex_iii_category="creditworthiness")
    mv = ModelVersion.objects.create(model=model, version="1", artifact_sha256="0" * 64, artifact_format="skops",
                                     artifact_size=1, artifact_path="x", framework="sklearn")
    user = get_user_model().objects.create_user(username="bench-requester")
    release = ReleaseRequest.objects.create(model=model, model_version=mv, environment="production", state="approved",
                                            requester=user,
                                            approval_policy=approval_policy_current(risk_tier="high",
                                                                                    environment="production"))
    plan = MonitoringPlan.objects.create(model_version=mv, release=release, reference=reference.to_json(),
                                         reference_digest=reference.digest, reference_origin="bench")
    policy = plans.default_policy("high")
    MonitoringPlanVersion.objects.create(plan=plan, version=1, policy=policy, digest=plans.digest(policy), origin=ORIGIN)
    return plan


def child():
    setup_django()
    import pandas as pd
    import pyarrow as pa

    from governance.monitoring.aggregates import ReferenceProfile, WindowAggregate, parse_rows
    from governance.monitoring.ingest import iso_utc
    from governance.monitoring.models import Finding
    from governance.monitoring.services import aggregate_ingest, windows_close
    from governance.monitoring.statistics import Limits, windows_evaluate
    from audit.models import LedgerEntry

    from benchmarks.bench_monitoring import FEATURES, ORIGIN, SEED, WEEK, WINDOWS, _features, _spec

    rng = np.random.default_rng([SEED, 1])
    frame = pd.DataFrame(_features(rng, REFERENCE_ROWS, np.zeros(REFERENCE_ROWS, bool)))
    frame["risk"] = (rng.random(REFERENCE_ROWS) < frame["score"]).astype(int)
    reference = ReferenceProfile.from_frame(frame, _spec())
    plan = _plan(reference)
    docs = []
    for k in range(WINDOWS):
        rng = np.random.default_rng([SEED, 100 + k])
        table = pa.table(_features(rng, ROWS_PER_WINDOW, np.full(ROWS_PER_WINDOW, k >= 26)))
        rows = parse_rows(reference, {c: table.column(c) for c in table.column_names}, table.num_rows, declared=True)
        start = ORIGIN + k * WEEK
        docs.append(WindowAggregate.empty(reference, iso_utc(start), iso_utc(start + WEEK)).add(rows).to_json())
    started = time.perf_counter()
    for k, doc in enumerate(docs):
        aggregate_ingest(plan=plan, document=doc, actor=None, now=ORIGIN + k * WEEK + timedelta(days=1))
    ingest_s = time.perf_counter() - started
    windows = [WindowAggregate.from_json(d, reference) for d in docs]
    started = time.perf_counter()
    windows_evaluate(windows, reference, limits=Limits())
    pure_s = time.perf_counter() - started
    before = LedgerEntry.objects.count()
    started = time.perf_counter()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        closed = profiler.runcall(windows_close, now=ORIGIN + WINDOWS * WEEK)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    else:
        closed = windows_close(now=ORIGIN + WINDOWS * WEEK)
    close_s = time.perf_counter() - started
    print(json.dumps({
        "windows": len(closed), "features": len(FEATURES), "ingest_s": ingest_s, "pure_evaluate_s": pure_s,
        "close_s": close_s, "ledger_entries": LedgerEntry.objects.count() - before,
        "findings": Finding.objects.count(), "alert_windows": sum(1 for w in closed if w.verdict == "alert"),
    }))


def main():
    with scratch_database("custos_bench_monitoring_app") as env:
        out = json.loads(run_module(env, "benchmarks.bench_monitoring_app", "child").strip().splitlines()[-1])
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"{out['windows']} pre-aggregated windows x {out['features']} features sent through aggregate_ingest: "
          f"{out['ingest_s']:.2f} s ({out['ingest_s'] / out['windows'] * 1000:.0f} ms a window)")
    print(f"windows_close of {out['windows']} windows (evaluate each, sign its digest, open findings): "
          f"{out['close_s']:.2f} s (target < 2 s for the evaluation); {out['ledger_entries']} ledger entries, "
          f"{out['findings']} findings, {out['alert_windows']} windows in alert")
    print(f"the same windows evaluated together, pure (windows_evaluate): {out['pure_evaluate_s']:.2f} s")


if __name__ == "__main__":
    if sys.argv[1:] == ["child"]:
        child()
    else:
        main()
