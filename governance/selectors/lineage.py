"""The lineage graph: datasets -> training runs -> model versions (and datasets runs wrote).

``upstream(model_version)`` walks from a model version back to the code and data it came
from; ``downstream(dataset_version)`` walks forward to every run and model version that used
it. Both return ``{"root", "nodes", "edges"}`` restricted to what the user may see, and
``governance.charts.lineage.graph_svg`` draws such a graph.
"""

from ..models import DatasetVersion, ModelVersion, TrainingRun, TrainingRunInput, TrainingRunOutput
from .registry import dataset_versions_for, model_versions_for, training_runs_for

MAX_NODES = 500


def _dv_node(dv):
    return {
        "id": f"datasetversion:{dv.pk}",
        "type": "dataset_version",
        "pk": dv.pk,
        "label": f"{dv.dataset.name}@{dv.version}",
        "dataset": dv.dataset.name,
        "version": dv.version,
        "sha256": dv.sha256,
        "storage": dv.storage,
        "row_count": dv.row_count,
    }


def _run_node(run):
    return {
        "id": f"trainingrun:{run.pk}",
        "type": "training_run",
        "pk": run.pk,
        "label": run.name or run.external_run_id or f"run {run.pk}",
        "external_run_id": run.external_run_id,
        "source": run.source,
        "state": run.state,
    }


def _mv_node(mv):
    return {
        "id": f"modelversion:{mv.pk}",
        "type": "model_version",
        "pk": mv.pk,
        "label": f"{mv.model.name}@{mv.version}",
        "model": mv.model.name,
        "version": mv.version,
        "artifact_sha256": mv.artifact_sha256,
    }


def _code_node(code):
    return {
        "id": f"codeversion:{code.pk}",
        "type": "code_version",
        "pk": code.pk,
        "label": f"{code.repository_url.rstrip('/').rsplit('/', 1)[-1]}@{code.commit_sha[:10]}",
        "repository_url": code.repository_url,
        "commit_sha": code.commit_sha,
        "image_digest": code.image_digest,
    }


class _Graph:
    def __init__(self, user, unrestricted):
        self.nodes = {}
        self.edges = set()
        if unrestricted:  # the system (a report renders the evidence as it stands)
            self.runs = TrainingRun.objects.unrestricted()
            self.dvs = DatasetVersion.objects.unrestricted()
            self.mvs = ModelVersion.objects.unrestricted()
        else:
            self.runs = training_runs_for(user)
            self.dvs = dataset_versions_for(user)
            self.mvs = model_versions_for(user)

    def add(self, node):
        self.nodes.setdefault(node["id"], node)
        return node["id"]

    def edge(self, source, target, label=""):
        self.edges.add((source, target, label))

    def result(self, root):
        return {
            "root": root,
            "nodes": sorted(self.nodes.values(), key=lambda n: n["id"]),
            "edges": [{"source": s, "target": t, "label": label} for s, t, label in sorted(self.edges)],
            "truncated": len(self.nodes) >= MAX_NODES,
        }


def upstream(model_version: ModelVersion, *, user=None, unrestricted: bool = False) -> dict:
    """The code, runs and dataset versions MODEL_VERSION came from, transitively, as USER may see them."""
    g = _Graph(user, unrestricted)
    root = g.add(_mv_node(model_version))
    run = g.runs.filter(model_version=model_version).first()
    pending = [run] if run else []
    seen = set()
    while pending and len(g.nodes) < MAX_NODES:
        run = pending.pop()
        if run.pk in seen:
            continue
        seen.add(run.pk)
        run_id = g.add(_run_node(run))
        if run.model_version_id and g.mvs.filter(pk=run.model_version_id).exists():
            g.edge(run_id, g.add(_mv_node(run.model_version)), "produced")
        if run.code_version_id:
            g.edge(g.add(_code_node(run.code_version)), run_id, "code")
        for output in TrainingRunOutput.objects.filter(run=run, dataset_version__in=g.dvs).select_related(
            "dataset_version__dataset"
        ):
            g.edge(run_id, g.add(_dv_node(output.dataset_version)), "wrote")
        for link in TrainingRunInput.objects.filter(run=run, dataset_version__in=g.dvs).select_related(
            "dataset_version__dataset"
        ):
            dv_id = g.add(_dv_node(link.dataset_version))
            g.edge(dv_id, run_id, link.role)
            # Which runs wrote this input? Walk further up.
            pending.extend(g.runs.filter(outputs__dataset_version=link.dataset_version))
    return g.result(root)


def downstream(dataset_version: DatasetVersion, *, user=None, unrestricted: bool = False) -> dict:
    """The runs that read DATASET_VERSION and what they produced, transitively, as USER may see them."""
    g = _Graph(user, unrestricted)
    root = g.add(_dv_node(dataset_version))
    pending = [dataset_version]
    seen = set()
    while pending and len(g.nodes) < MAX_NODES:
        dv = pending.pop()
        if dv.pk in seen:
            continue
        seen.add(dv.pk)
        dv_id = g.add(_dv_node(dv))
        for link in TrainingRunInput.objects.filter(dataset_version=dv, run__in=g.runs).select_related(
            "run", "run__model_version__model"
        ):
            run = link.run
            run_id = g.add(_run_node(run))
            g.edge(dv_id, run_id, link.role)
            if run.model_version_id and g.mvs.filter(pk=run.model_version_id).exists():
                g.edge(run_id, g.add(_mv_node(run.model_version)), "produced")
            for output in TrainingRunOutput.objects.filter(run=run, dataset_version__in=g.dvs).select_related(
                "dataset_version__dataset"
            ):
                g.edge(run_id, g.add(_dv_node(output.dataset_version)), "wrote")
                pending.append(output.dataset_version)
    return g.result(root)
