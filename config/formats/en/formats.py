"""One way to write a time everywhere a page shows one: ISO 8601 with seconds, in UTC (the
project's TIME_ZONE), as auditors expect: 2026-06-01T10:00:00Z."""

DATETIME_FORMAT = r"Y-m-d\TH:i:s\Z"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = DATE_FORMAT
TIME_FORMAT = "H:i:s"
