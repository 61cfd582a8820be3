"""The test suite. Registers the ledger kinds the tests append (in writer subprocesses too)."""

from audit.kinds import register_kinds

from .kinds import TestKind

register_kinds(TestKind)
