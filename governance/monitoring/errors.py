"""The exceptions of monitoring input: each names a column or a field and what was expected,
and never quotes a cell value (production values may be personal data)."""


class MonitoringInputError(ValueError):
    """Input that monitoring cannot use; the message is safe to show and to log."""


class ColumnError(MonitoringInputError):
    """A column is missing, of the wrong type, or holds values that cannot be used."""

    def __init__(self, column: str, problem: str, expected: str):
        self.column, self.problem, self.expected = column, problem, expected
        super().__init__(f"column {column!r}: {problem}; expected {expected}")


class BatchFormatError(MonitoringInputError):
    """A batch file that cannot be read as the declared format."""


class DuplicateBatch(MonitoringInputError):
    """A batch whose content digest was already ingested for this plan."""


class AggregateShapeError(MonitoringInputError):
    """A pre-aggregated window (or a stored profile) that does not fit its reference profile."""

    def __init__(self, path: str, expected: str):
        self.path, self.expected = path, expected
        super().__init__(f"{path}: expected {expected}")


class LabelError(MonitoringInputError):
    """Labels that cannot be applied to the join records."""
