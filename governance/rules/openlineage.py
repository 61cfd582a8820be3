"""Parse OpenLineage events (spec 2-0-x: RunEvent, DatasetEvent, JobEvent) into plain facts.

Pure functions, no database: ``parse_event(body)`` checks the fields Custos relies on and
raises ``OpenLineageInvalid`` naming the offending path (``run.runId``, ``inputs[0].name``, …).
Facets Custos does not map are kept in the stored event as they came.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.dateparse import parse_datetime

from config.errors import DomainError

EVENT_TYPES = {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
TERMINAL = {"COMPLETE", "ABORT", "FAIL"}


class OpenLineageInvalid(DomainError):
    """An event lacks or misstates a field Custos relies on; ``field`` is its path (``run.runId``)."""

    def __init__(self, path, message):
        self.path = path
        super().__init__(f"{path}: {message}", field=path)


@dataclass
class LineageDataset:
    namespace: str
    name: str
    version: str = ""  # from the `version` facet (datasetVersion)
    schema: list = field(default_factory=list)  # from the `schema` facet: [{name, type}]


@dataclass
class LineageEvent:
    kind: str  # "run", "dataset" or "job"
    event_time: datetime
    event_type: str = ""
    run_id: str = ""
    job_namespace: str = ""
    job_name: str = ""
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    datasets: list = field(default_factory=list)  # DatasetEvent: the one dataset


def _text(obj, key, path, *, max_length=500):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise OpenLineageInvalid(f"{path}{key}", "is required and must be a non-empty string.")
    if len(value) > max_length:
        raise OpenLineageInvalid(f"{path}{key}", f"is longer than {max_length} characters.")
    return value


def _object(obj, key, path, *, required=True):
    value = obj.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise OpenLineageInvalid(f"{path}{key}", "must be an object.")
    return value


def _dataset(obj, path) -> LineageDataset:
    if not isinstance(obj, dict):
        raise OpenLineageInvalid(path.rstrip("."), "must be an object.")
    facets = _object(obj, "facets", path, required=False)
    version = ""
    if isinstance(facets.get("version"), dict):
        version = facets["version"].get("datasetVersion") or ""
        # Cutting a long version would make distinct versions one DatasetVersion: refuse it.
        if not isinstance(version, str) or len(version) > 100:
            raise OpenLineageInvalid(f"{path}facets.version.datasetVersion", "must be a string of at most 100 characters.")
    schema = []
    schema_facet = facets.get("schema")
    if isinstance(schema_facet, dict):
        fields = schema_facet.get("fields")
        if not isinstance(fields, list):
            raise OpenLineageInvalid(f"{path}facets.schema.fields", "must be a list.")
        for i, f in enumerate(fields):
            name = _text(f, "name", f"{path}facets.schema.fields[{i}].", max_length=200)
            schema.append({"name": name, "type": str(f.get("type") or "")})
    return LineageDataset(
        namespace=_text(obj, "namespace", path, max_length=200),
        name=_text(obj, "name", path, max_length=500),
        version=version,
        schema=schema,
    )


def _datasets(body, key):
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OpenLineageInvalid(key, "must be a list.")
    return [_dataset(d, f"{key}[{i}].") for i, d in enumerate(value)]


def parse_event(body) -> LineageEvent:
    """Check BODY (decoded JSON) and return its facts; raise OpenLineageInvalid."""
    if not isinstance(body, dict):
        raise OpenLineageInvalid("(body)", "an OpenLineage event is a JSON object.")
    _text(body, "producer", "", max_length=2000)
    _text(body, "schemaURL", "", max_length=2000)
    event_time = parse_datetime(_text(body, "eventTime", "", max_length=64))
    if event_time is None or event_time.tzinfo is None:
        raise OpenLineageInvalid("eventTime", "must be an ISO 8601 date-time with a time zone.")
    if "run" in body:
        run = _object(body, "run", "")
        run_id = _text(run, "runId", "run.", max_length=100)
        try:
            uuid.UUID(run_id)
        except ValueError:
            raise OpenLineageInvalid("run.runId", "must be a UUID.") from None
        event_type = body.get("eventType") or "OTHER"
        if event_type not in EVENT_TYPES:
            raise OpenLineageInvalid("eventType", f"must be one of {', '.join(sorted(EVENT_TYPES))}.")
        job = _object(body, "job", "")
        return LineageEvent(
            kind="run",
            event_time=event_time,
            event_type=event_type,
            run_id=run_id.lower(),
            job_namespace=_text(job, "namespace", "job.", max_length=200),
            job_name=_text(job, "name", "job.", max_length=500),
            inputs=_datasets(body, "inputs"),
            outputs=_datasets(body, "outputs"),
        )
    if "dataset" in body:
        return LineageEvent(kind="dataset", event_time=event_time, datasets=[_dataset(body["dataset"], "dataset.")])
    if "job" in body:
        job = _object(body, "job", "")
        return LineageEvent(
            kind="job",
            event_time=event_time,
            job_namespace=_text(job, "namespace", "job.", max_length=200),
            job_name=_text(job, "name", "job.", max_length=500),
            inputs=_datasets(body, "inputs"),
            outputs=_datasets(body, "outputs"),
        )
    raise OpenLineageInvalid("(body)", "is neither a RunEvent (run), a DatasetEvent (dataset) nor a JobEvent (job).")
