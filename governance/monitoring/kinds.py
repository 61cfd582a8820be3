"""What monitoring writes to the ledger: one closed vocabulary, registered in ``MonitoringConfig.ready()``.

Payloads carry counts, digests and verdicts only: never a production value, a prediction id or
its keyed hash (the data subjects' rows never reach the ledger).
"""

from enum import StrEnum


class MonitoringKind(StrEnum):
    PLAN_CREATED = "monitoring.plan_created"
    PLAN_VERSION_PUBLISHED = "monitoring.plan_version_published"
    BATCH_INGESTED = "monitoring.batch_ingested"
    LABELS_RECORDED = "monitoring.labels_recorded"
    WINDOW_CLOSED = "monitoring.window_closed"
    WINDOW_REEVALUATED = "monitoring.window_reevaluated"
    JOIN_RECORDS_PURGED = "monitoring.join_records_purged"
    FINDING_OPENED = "monitoring.finding_opened"
    FINDING_DISMISSED = "monitoring.finding_dismissed"
    INCIDENT_OPENED = "monitoring.incident_opened"
    INCIDENT_REPORTED = "monitoring.incident_reported"
    REVOCATION_REQUESTED = "monitoring.revocation_requested"
    REVOCATION_EXECUTED = "monitoring.revocation_executed"
