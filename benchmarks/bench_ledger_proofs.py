"""Inclusion and consistency proof latency in a ledger of 1,000,000 entries (PostgreSQL).

The million leaves and their complete-subtree hashes are loaded with COPY (a million signed
appends would take long on two cores); proofs then go through the same code the API uses
(`audit.tree`), and each is verified against the root. The naive approach for comparison
rebuilds the proof from all leaf hashes in memory (`audit.merkle.inclusion_proof`).
"""

import random
import statistics
import sys
import time

from benchmarks.ledger_support import run_module, scratch_database, setup_django

SIZE = 1_000_000
SAMPLES = 200


def load(size: int) -> None:
    """COPY SIZE synthetic entries and their tree nodes into the tables; set the head."""
    from django.db import connection

    from audit import merkle
    from audit.models import LedgerHead, TreeNode

    frontier, nodes, prev = [], [], bytes(32)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor, for COPY
        with raw.copy(
            "COPY audit_ledgerentry (seq, created_at, kind, subject, actor, payload, prev_hash, entry_hash, "
            "signature, key_id) FROM STDIN"
        ) as copy:
            for seq in range(size):
                h = merkle.leaf_hash(seq.to_bytes(8, "big"))
                copy.write_row(
                    (seq, "2026-01-01T00:00:00Z", "bench.synthetic", f"bench.item:{seq}", "bench", "{}", prev, h, bytes(64), "00000000")
                )
                frontier, done = merkle.frontier_append(frontier, seq, h)
                nodes.extend((TreeNode.node_id(lv, ix), hh) for lv, ix, hh in done if lv > 0)
                prev = h
        with raw.copy("COPY audit_treenode (id, hash) FROM STDIN") as copy:
            for row in nodes:
                copy.write_row(row)
        cursor.execute("ANALYZE audit_ledgerentry")
        cursor.execute("ANALYZE audit_treenode")
    LedgerHead.objects.update_or_create(id=1, defaults={"size": size, "last_hash": prev, "frontier": b"".join(frontier)})
    return frontier


def worker() -> None:
    setup_django()
    from audit import merkle, tree
    from audit.models import LedgerEntry

    t = time.perf_counter()
    frontier = load(SIZE)
    print(f"loaded {SIZE} entries and their tree nodes in {time.perf_counter() - t:.1f} s")
    root = merkle.frontier_root(frontier)
    rng = random.Random(42)
    incl, cons = [], []
    for _ in range(SAMPLES):
        seq = rng.randrange(SIZE)
        t = time.perf_counter()
        proof = tree.inclusion_proof(seq=seq, tree_size=SIZE)
        incl.append(time.perf_counter() - t)
        assert merkle.verify_inclusion(merkle.leaf_hash(seq.to_bytes(8, "big")), seq, SIZE, proof, root)
        old = rng.randrange(1, SIZE)
        t = time.perf_counter()
        proof = tree.consistency_proof(old_size=old, new_size=SIZE)
        cons.append(time.perf_counter() - t)
        assert merkle.verify_consistency(old, SIZE, tree.root_at(old), root, proof)

    def fmt(xs):
        xs = sorted(xs)
        return f"median {statistics.median(xs) * 1000:6.2f} ms  p95 {xs[int(len(xs) * 0.95)] * 1000:6.2f} ms"

    print(f"inclusion proof at {SIZE:,} entries:   {fmt(incl)}  ({SAMPLES} random leaves, verified)")
    print(f"consistency proof at {SIZE:,} entries: {fmt(cons)}  ({SAMPLES} random old sizes, verified)")
    t = time.perf_counter()
    leaves = [bytes(h) for h in LedgerEntry.objects.order_by("seq").values_list("entry_hash", flat=True).iterator(20000)]
    merkle.inclusion_proof(leaves, SIZE // 3)
    naive = time.perf_counter() - t
    print(
        f"naive (read all leaf hashes, rehash the tree) one inclusion proof: {naive * 1000:8.0f} ms  "
        f"= {naive / statistics.median(incl):,.0f}x the stored-subtree proof"
    )


def main():
    with scratch_database("custos_bench_proofs") as env:
        print(run_module(env, "benchmarks.bench_ledger_proofs", "worker"), end="")


if __name__ == "__main__":
    if sys.argv[1:] == ["worker"]:
        worker()
    else:
        main()
