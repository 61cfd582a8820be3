"""A separate writer process for the concurrency tests: ``python -m tests.audit.ledger_writer N TAG``.

Commits N entries on its own database connection, numbered ``n`` = 0..N-1 in its payloads:
pairs of them in one transaction (so one transaction's entries must keep their order), some
of those waiting for the ledger (``sealed=True``) rather than queueing, and between them
transactions that append and then fail (which must leave no entry and no gap).

``python -m tests.audit.ledger_writer N checkpoints`` signs N checkpoints meanwhile instead.
"""

import sys

import django


class Doomed(Exception):
    pass


def main(n: int, tag: str) -> None:
    django.setup()
    from django.db import transaction

    from audit.services import ledger_append

    if tag == "checkpoints":
        import time

        from audit.services import checkpoint_create

        for _ in range(n):
            checkpoint_create()
            time.sleep(0.05)
        return

    def append(i, kind="test.concurrent"):
        ledger_append(
            kind=kind, subject=f"test.writer:{tag}", payload={"writer": tag, "n": i}, actor=tag, sealed=i % 14 == 4
        )

    i = 0
    while i < n:
        if i % 10 == 0:
            try:
                with transaction.atomic():
                    append(i, kind="test.doomed")
                    raise Doomed
            except Doomed:
                pass
        if i + 1 < n:
            with transaction.atomic():
                append(i)
                append(i + 1)
            i += 2
        else:
            append(i)
            i += 1


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
