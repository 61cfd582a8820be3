"""Ledger kinds the tests append (registered by ``tests/__init__.py``, also in writer subprocesses)."""

from enum import StrEnum


class TestKind(StrEnum):
    RECORDED = "test.recorded"
    OTHER = "test.other"
    SEALED = "test.sealed"
    HOLDER = "test.holder"
    FOLLOWER = "test.follower"
    CONCURRENT = "test.concurrent"
    DOOMED = "test.doomed"
    FIRST = "test.first"  # tests/audit/test_queue.py, which runs on PostgreSQL only
    AFTER = "test.after"
    MINE = "test.mine"
    STRANDED = "test.stranded"
