"""`ledger verify` throughput (entries/s) next to a bare loop of the same hashing and signature checks.

The bare loop does, per entry, exactly the cryptographic work verification cannot skip:
RFC 8785 canonical bytes, the SHA-256 leaf hash, and one Ed25519 signature check, over rows
already in memory. `ledger verify` also reads the rows from PostgreSQL, checks the chain, key
rules and sequence, rebuilds the Merkle tree and compares every stored tree node with it, and
checks every stored checkpoint (note, signer, columns, time) and the head.

The machine is shared, so the two are timed in alternation, ROUNDS times, and the best of each
is kept: the ratio is the figure to read.
"""

import sys
import time

from benchmarks.ledger_support import run_module, scratch_database, setup_django

ENTRIES = 5000
ROUNDS = 5


def worker() -> None:
    setup_django()
    from django.db import transaction

    from audit.canonical import canonical_json
    from audit.chain import entry_content
    from audit.keys import signing_key
    from audit.merkle import leaf_hash
    from audit.models import LedgerEntry
    from audit.note import parse_verifier_key
    from audit.services import checkpoint_create, ledger_append
    from audit.verification import ledger_verify

    for start in range(0, ENTRIES, 500):
        with transaction.atomic():
            for i in range(start, start + 500):
                ledger_append(
                    kind="bench.recorded",
                    subject=f"governance.modelversion:{i % 50}",
                    payload={"i": i, "artifact_sha256": f"{i:064x}", "metrics": {"auc": 0.81, "rows": 1000}},
                    actor="bench",
                )
        checkpoint_create()
    fields = ("seq", "created_at", "kind", "subject", "actor", "payload", "prev_hash", "entry_hash", "signature", "key_id")
    rows = list(LedgerEntry.objects.order_by("seq").values_list(*fields))
    keys = {signing_key().key_id: parse_verifier_key(signing_key().verifier_key)}

    def bare():
        for seq, created_at, kind, subject, actor, payload, prev, entry_hash, signature, key_id in rows:
            data = canonical_json(
                entry_content(
                    seq=seq,
                    created_at=created_at,
                    kind=kind,
                    subject=subject,
                    actor=actor,
                    payload=payload,
                    prev_hash=bytes(prev),
                    key_id=key_id,
                )
            )
            assert leaf_hash(data) == bytes(entry_hash)
            assert keys[key_id].verify(data, bytes(signature))

    timings = {"bare": [], "verify": []}
    for _ in range(ROUNDS):
        t = time.perf_counter()
        bare()
        timings["bare"].append(time.perf_counter() - t)
        t = time.perf_counter()
        result = ledger_verify()
        timings["verify"].append(time.perf_counter() - t)
        assert result.ok, result.error
    n = len(rows)
    b, v = min(timings["bare"]), min(timings["verify"])
    print(
        f"{n} entries, {result.nodes} tree nodes, {result.checkpoints} checkpoints: ledger verify {n / v:8.0f} entries/s   "
        f"bare hash+signature loop {n / b:8.0f} entries/s   ratio {v / b:4.2f}x (best of {ROUNDS})"
    )


def main():
    with scratch_database("custos_bench_verify") as env:
        print(run_module(env, "benchmarks.bench_ledger_verify", "worker"), end="")


if __name__ == "__main__":
    if sys.argv[1:] == ["worker"]:
        worker()
    else:
        main()
