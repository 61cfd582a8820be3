"""A separate writer process for the concurrency tests: ``python -m tests.audit.ledger_writer N TAG``.

Appends N entries, each in its own transaction on its own database connection, and prints
the sequence numbers it got.
"""

import sys

import django


def main(n: int, tag: str) -> None:
    django.setup()
    from audit.services import ledger_append

    seqs = [
        ledger_append(kind="test.concurrent", subject=f"test.writer:{tag}", payload={"writer": tag, "n": i}, actor=tag).seq
        for i in range(n)
    ]
    print(" ".join(map(str, seqs)))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
