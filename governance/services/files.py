"""Files written inside a service's transaction: kept if it commits, removed if it rolls back."""

import weakref
from pathlib import Path

from django.db import transaction


class _KeepOnCommit:
    """The on_commit callback of a newly written file: running it marks the file as kept."""

    def __init__(self, state: dict):
        self.state = state

    def __call__(self):
        self.state["committed"] = True


def _remove_unless_committed(path: Path, state: dict) -> None:
    if not state["committed"]:
        path.unlink(missing_ok=True)


def remove_on_rollback(path) -> None:
    """Remove the file PATH unless the current transaction, a caller's outer one included,
    commits.

    Call it inside the atomic block that stores the row naming PATH. Django has no
    on-rollback hook, but it drops, unrun, the on_commit callbacks of a transaction or
    savepoint that rolls back; when the dropped callback is freed, its finalizer sees that it
    never ran and removes the file. After a commit the callback has run and the file stays.
    """
    state = {"committed": False}
    keep = _KeepOnCommit(state)
    weakref.finalize(keep, _remove_unless_committed, Path(path), state)
    transaction.on_commit(keep)
