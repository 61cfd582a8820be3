"""Benchmarks of Custos (``python -m benchmarks [bench_NAME ...]``); figures in benchmarks/README.md."""

from enum import StrEnum

from audit.kinds import register_kinds


class BenchKind(StrEnum):
    """Ledger kinds the benchmarks append."""

    APPENDED = "bench.appended"
    RECORDED = "bench.recorded"


register_kinds(BenchKind)
