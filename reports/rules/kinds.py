"""What the reports app writes to the ledger: one closed vocabulary, registered in ``ReportsConfig.ready()``."""

from enum import StrEnum


class ReportKind(StrEnum):
    REQUESTED = "report.requested"
    ISSUED = "report.issued"
    FAILED = "report.failed"
    HUMAN_SECTION_RECORDED = "report.human_section_recorded"
