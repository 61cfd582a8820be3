"""Concurrent appends on PostgreSQL: an entry queued while another transaction holds the head.

Each test runs real transactions on two connections (a thread holds the head, as a concurrent
request would), so the queue, the post-commit sealing and rollbacks happen as in production.
"""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from audit.models import LedgerEntry, LedgerHead, QueuedEntry
from audit.services import checkpoint_create, ledger_append

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),  # leave the roles for later tests
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite writers take turns: nothing is ever queued there"
    ),
]


def append(kind, **payload):
    return ledger_append(kind=kind, subject="test.thing:1", payload=payload, actor="tester")


class Holder(threading.Thread):
    """Holds the ledger's head in a transaction of its own until told to commit or roll back."""

    def __init__(self):
        super().__init__(daemon=True)
        self.holding, self.go = threading.Event(), threading.Event()
        self.rollback = False
        self.entry = None
        self.error = None

    def run(self):
        try:
            with transaction.atomic():
                self.entry = append("test.holder")
                self.holding.set()
                self.go.wait(30)
                if self.rollback:
                    transaction.set_rollback(True)
        except Exception as exc:  # reported by finish()
            self.error = exc
        finally:
            self.holding.set()
            connections.close_all()

    def __enter__(self):
        self.start()
        assert self.holding.wait(30)
        assert self.entry is not None and self.entry.seq is not None, self.error
        return self

    def finish(self, *, rollback=False):
        self.rollback = rollback
        self.go.set()
        self.join(30)
        assert not self.is_alive() and self.error is None, self.error

    def __exit__(self, *exc):
        if self.is_alive():
            self.finish()


def sealed(kind):
    return list(LedgerEntry.objects.filter(kind=kind).order_by("seq"))


def test_entry_queued_behind_a_holder_is_sealed_when_the_holder_commits(verify):
    append("test.first")  # the ledger exists
    with Holder() as holder:
        queued = append("test.follower", n=1)
        # Committed, but the head is held: queued, and left to the holder, who seals after it lets go.
        assert queued.seq is None
        assert QueuedEntry.objects.filter(kind="test.follower").count() == 1
        assert sealed("test.follower") == []
        holder.finish()
    assert QueuedEntry.objects.count() == 0
    [follower] = sealed("test.follower")
    assert follower.seq == holder.entry.seq + 1 and follower.payload == {"n": 1}
    assert bytes(follower.prev_hash) == bytes(LedgerEntry.objects.get(seq=holder.entry.seq).entry_hash)
    assert LedgerHead.objects.get().size == LedgerEntry.objects.count()
    ok, message = verify()
    assert ok, message


def test_a_queued_entry_that_rolls_back_leaves_no_entry_and_no_gap(verify):
    append("test.first")
    with Holder() as holder:
        with pytest.raises(RuntimeError), transaction.atomic():
            assert append("test.doomed").seq is None
            raise RuntimeError("the change failed")
        assert QueuedEntry.objects.count() == 0
        holder.finish()
    after = append("test.after")
    assert sealed("test.doomed") == []
    assert after.seq == holder.entry.seq + 1
    ok, message = verify()
    assert ok, message


def test_one_transactions_entries_keep_their_order_across_queue_and_head(verify):
    append("test.first")
    holder = Holder().__enter__()
    with transaction.atomic():
        first = append("test.mine", n=1)  # the head is held: queued
        assert first.seq is None
        holder.finish()  # the holder commits; the head is free
        second = append("test.mine", n=2)  # takes the head, and seals this transaction's queued entry first
        assert second.seq is not None
    mine = sealed("test.mine")
    assert [e.payload["n"] for e in mine] == [1, 2]
    assert [e.seq for e in mine] == [holder.entry.seq + 1, holder.entry.seq + 2] == [second.seq - 1, second.seq]
    assert QueuedEntry.objects.count() == 0
    ok, message = verify()
    assert ok, message


def test_an_entry_left_by_a_holder_that_rolled_back_is_sealed_by_the_next_checkpoint(verify):
    append("test.first")
    with Holder() as holder:
        append("test.stranded")
        holder.finish(rollback=True)  # runs no after-commit sealing
    assert QueuedEntry.objects.count() == 1 and sealed("test.stranded") == []
    out = StringIO()
    call_command("ledger", "verify", "--no-progress", stdout=out)
    assert "Not yet sealed: 1 committed entry in the queue" in out.getvalue()
    checkpoint = checkpoint_create()
    [stranded] = sealed("test.stranded")
    assert checkpoint.tree_size == stranded.seq + 1 == LedgerEntry.objects.count()
    assert QueuedEntry.objects.count() == 0
    assert not LedgerEntry.objects.filter(kind="test.holder").exists()
    ok, message = verify()
    assert ok and "Not yet sealed" not in message, message


def test_sealed_append_waits_for_the_head_instead_of_queueing():
    append("test.first")
    with Holder() as holder:
        done = []

        def sealed_append():
            try:
                done.append(ledger_append(kind="test.sealed", subject="test.thing:1", payload={}, actor="t", sealed=True))
            finally:
                connections.close_all()

        waiter = threading.Thread(target=sealed_append)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and not done  # waiting for the head, not queued
        assert QueuedEntry.objects.count() == 0
        holder.finish()
        waiter.join(30)
    assert done and done[0].seq == holder.entry.seq + 1


def test_healthz_fails_while_an_entry_waits_longer_than_a_checkpoint_interval(client, settings):
    append("test.first")
    with Holder() as holder:
        append("test.stranded")
        holder.finish(rollback=True)
    assert client.get("/healthz").json()["checks"]["ledger_queue"] == "ok"  # just queued: fine
    QueuedEntry.objects.update(queued_at=timezone.now() - timedelta(seconds=settings.CUSTOS_CHECKPOINT_INTERVAL + 61))
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["checks"]["ledger_queue"] == "fail"
    checkpoint_create()  # what the beat task does
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["checks"]["ledger_queue"] == "ok"
