import uuid

import pytest

from governance.rules import roles
from governance.models import TrainingRun
from governance.charts.lineage import graph_svg
from governance.selectors.lineage import downstream, upstream
from governance.services.openlineage import openlineage_event_ingest
from governance.services.registry import training_run_register


def _event(unit, run_id, inputs, outputs):
    ds = lambda name: {"namespace": "lake", "name": name, "facets": {"version": {"datasetVersion": "v1"}}}  # noqa: E731
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-06-01T10:00:00Z",
        "producer": "https://example.com/pipeline",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id},
        "job": {"namespace": unit.slug, "name": "prepare"},
        "inputs": [ds(n) for n in inputs],
        "outputs": [ds(n) for n in outputs],
    }


def test_upstream_and_downstream_are_transitive(unit, make_german_credit_version, make_credit_model_version):
    raw = make_german_credit_version(unit, name="lake/raw", version="v1")
    # A preparation job reported by OpenLineage reads lake/raw and writes lake/features.
    openlineage_event_ingest(unit=unit, body=_event(unit, str(uuid.uuid4()), ["raw"], ["features"]))
    prep = TrainingRun.objects.get(source="openlineage")
    features = prep.outputs.get().dataset_version
    assert prep.inputs.get().dataset_version == raw
    mv = make_credit_model_version(unit, dataset_version=features)

    up = upstream(mv, unrestricted=True)
    ids = {n["id"] for n in up["nodes"]}
    assert {f"modelversion:{mv.pk}", f"trainingrun:{mv.training_run.pk}", f"datasetversion:{features.pk}",
            f"trainingrun:{prep.pk}", f"datasetversion:{raw.pk}"} <= ids
    assert {"source": f"trainingrun:{prep.pk}", "target": f"datasetversion:{features.pk}", "label": "wrote"} in up["edges"]
    down = downstream(raw, unrestricted=True)
    assert f"modelversion:{mv.pk}" in {n["id"] for n in down["nodes"]}
    raw_node = next(n for n in down["nodes"] if n["id"] == f"datasetversion:{raw.pk}")
    assert raw_node["sha256"] == raw.sha256 and raw_node["row_count"] == 1000


def test_graphs_need_the_asking_user_or_an_explicit_unrestricted(unit, credit_model_version):
    with pytest.raises(TypeError, match="unrestricted"):
        upstream(credit_model_version)


def test_graphs_hide_other_units(unit, other_unit, make_user, make_german_credit_version, make_credit_model_version):
    mv = make_credit_model_version(unit)
    outsider = make_user(roles.COMPLIANCE_OFFICER, [other_unit])
    up = upstream(mv, user=outsider)
    assert [n["id"] for n in up["nodes"]] == [f"modelversion:{mv.pk}"] and up["edges"] == []


def test_svg_escapes_names(unit, make_german_credit_version):
    dv = make_german_credit_version(unit, name="<script>alert(1)</script>")
    training_run_register(business_unit=unit, inputs=[(dv, "train")], name="<b>run</b>")
    svg = graph_svg(downstream(dv, unrestricted=True))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg
