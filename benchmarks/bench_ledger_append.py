"""Ledger append throughput on PostgreSQL, 1 and 8 writer processes, next to plain inserts.

Each writer is its own process with its own connection; every append (and every plain insert)
is its own committed transaction. The plain insert writes the same columns (payload, hashes,
signature-sized bytes) into an unconstrained table with no lock, chain, signature or tree, so
the ratio is the cost of signing, chaining and serialising writers. Each configuration runs
BENCH_ROUNDS times (default 3), alternating with the plain inserts so both see the same
background load; the median and the range are printed.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.ledger_support import ROOT, scratch_database, setup_django

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))

PLAIN_TABLE = """CREATE TABLE IF NOT EXISTS bench_plain (
    id bigserial PRIMARY KEY, created_at timestamptz, kind varchar(100), subject varchar(200), actor varchar(150),
    payload jsonb, prev_hash bytea, entry_hash bytea, signature bytea, key_id varchar(8))"""


def worker(mode: str, n: int, tag: str, go_file: str) -> None:
    setup_django()
    from django.db import connection, transaction

    from audit.services import ledger_append

    payload = {"writer": tag, "artifact_sha256": "ab" * 32, "rows": 1000, "verdict": "pass"}
    connection.ensure_connection()
    if mode == "plain":
        with connection.cursor() as c:
            c.execute("SELECT 1")
    open(f"{go_file}.ready-{tag}", "w").close()
    while not os.path.exists(go_file):  # start together
        time.sleep(0.001)
    start = time.perf_counter()
    for i in range(n):
        if mode == "append":
            ledger_append(kind="bench.appended", subject=f"bench.writer:{tag}", payload={**payload, "n": i}, actor=tag)
        else:
            with transaction.atomic(), connection.cursor() as c:
                c.execute(
                    "INSERT INTO bench_plain (created_at, kind, subject, actor, payload, prev_hash, entry_hash, "
                    "signature, key_id) VALUES (now(), %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        "bench.appended",
                        f"bench.writer:{tag}",
                        tag,
                        json.dumps({**payload, "n": i}),
                        os.urandom(32),
                        os.urandom(32),
                        os.urandom(64),
                        "00000000",
                    ],
                )
    print(json.dumps({"start": start, "end": time.perf_counter(), "n": n}))


def run(env, mode: str, writers: int, per_writer: int, tmp: Path) -> float:
    go = tmp / f"go-{mode}-{writers}-{env.get('PGOPTIONS', '').replace(' ', '')}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_ledger_append", "worker", mode, str(per_writer), f"w{i}", str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    while not all(Path(f"{go}.ready-w{i}").exists() for i in range(writers)):
        time.sleep(0.05)  # every process has imported Django and connected
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode:
            raise RuntimeError(err)
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return sum(r["n"] for r in results) / wall


def main():
    import tempfile

    import psycopg

    with scratch_database("custos_bench_append") as env, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(PLAIN_TABLE)
            sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        print(
            f"PostgreSQL synchronous_commit={sync}; every append is its own committed transaction; "
            f"{ROUNDS} rounds, plain and ledger alternating"
        )
        for writers, per_writer in ((1, 1500), (8, 400)):
            plain, ledger = [], []
            for _ in range(ROUNDS):
                plain.append(run(env, "plain", writers, per_writer, Path(tmp)))
                ledger.append(run(env, "append", writers, per_writer, Path(tmp)))
            print(
                f"{writers} writer(s): ledger_append median {statistics.median(ledger):6.0f}/s "
                f"[{min(ledger):.0f}-{max(ledger):.0f}]   plain INSERT median {statistics.median(plain):6.0f}/s "
                f"[{min(plain):.0f}-{max(plain):.0f}]   ratio of medians plain/ledger "
                f"{statistics.median(plain) / statistics.median(ledger):5.2f}x"
            )
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            queued = conn.execute("SELECT last_value FROM audit_queuedentry_id_seq").fetchone()[0]
            total = conn.execute("SELECT count(*) FROM audit_ledgerentry").fetchone()[0]
        print(f"entries that went through the queue (head busy at append): {queued:,} of {total:,}")
        out = subprocess.run(
            [sys.executable, "manage.py", "ledger", "verify", "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        print("after the runs, ledger verify:", (out.stdout or out.stderr).strip().split(";")[0])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()
