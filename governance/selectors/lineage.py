"""The lineage graph: datasets -> training runs -> model versions (and datasets runs wrote).

``upstream(model_version)`` walks from a model version back to the code and data it came
from; ``downstream(dataset_version)`` walks forward to every run and model version that used
it. Both return ``{"root", "nodes", "edges"}`` restricted to what the user may see, and
``graph_svg`` draws such a graph as a self-contained SVG (no external tools).
"""

from html import escape

from ..models import DatasetVersion, ModelVersion, TrainingRunInput, TrainingRunOutput
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
    def __init__(self, user):
        self.user = user
        self.nodes = {}
        self.edges = set()
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


def upstream(model_version: ModelVersion, *, user=None) -> dict:
    """The code, runs and dataset versions MODEL_VERSION came from, transitively."""
    g = _Graph(user)
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


def downstream(dataset_version: DatasetVersion, *, user=None) -> dict:
    """The runs that read DATASET_VERSION and what they produced, transitively."""
    g = _Graph(user)
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


# --- drawing ---------------------------------------------------------------------------------

COLORS = {
    "dataset_version": "#dbeafe",
    "code_version": "#ede9fe",
    "training_run": "#fef3c7",
    "model_version": "#dcfce7",
}
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 220, 46, 70, 22, 16


def _layers(graph) -> dict:
    """Column of each node: the length of the longest path reaching it (sources in column 0)."""
    incoming = {n["id"]: [] for n in graph["nodes"]}
    for e in graph["edges"]:
        if e["target"] in incoming and e["source"] in incoming:
            incoming[e["target"]].append(e["source"])
    layer = {}

    def depth(node, trail=()):
        if node in layer:
            return layer[node]
        if node in trail:  # a cycle cannot happen in lineage, but never loop forever
            return 0
        d = max((depth(p, (*trail, node)) + 1 for p in incoming[node]), default=0)
        layer[node] = d
        return d

    for node in incoming:
        depth(node)
    return layer


def graph_svg(graph) -> str:
    """Draw GRAPH (from upstream/downstream) as SVG text, left to right."""
    layer = _layers(graph)
    columns = {}
    for n in graph["nodes"]:
        columns.setdefault(layer[n["id"]], []).append(n)
    pos = {}
    for col, nodes in columns.items():
        for row, n in enumerate(sorted(nodes, key=lambda n: (n["type"], n["label"]))):
            pos[n["id"]] = (PAD + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    width = PAD * 2 + (max(columns, default=0) + 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + max((len(v) for v in columns.values()), default=1) * (BOX_H + GAP_Y) - GAP_Y
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img" '
        'aria-label="Lineage graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    for e in graph["edges"]:
        if e["source"] not in pos or e["target"] not in pos:
            continue
        x1, y1 = pos[e["source"]]
        x2, y2 = pos[e["target"]]
        x1, y1, x2, y2 = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        out.append(
            f'<path d="M {x1} {y1} C {x1 + GAP_X / 2} {y1}, {x2 - GAP_X / 2} {y2}, {x2} {y2}" fill="none" '
            'stroke="#555" marker-end="url(#arrow)"/>'
        )
        if e["label"]:
            out.append(
                f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 4}" text-anchor="middle" fill="#333">'
                f"{escape(e['label'])}</text>"
            )
    for n in graph["nodes"]:
        x, y = pos[n["id"]]
        stroke = ' stroke-width="2.5"' if n["id"] == graph["root"] else ""
        digest = n.get("sha256") or n.get("artifact_sha256") or n.get("commit_sha") or n.get("state") or ""
        label = n["label"] if len(n["label"]) <= 32 else n["label"][:31] + "…"
        out.append(
            f'<g><title>{escape(n["id"])} {escape(digest)}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{COLORS.get(n["type"], "#eee")}" '
            f'stroke="#333"{stroke}/>'
            f'<text x="{x + 8}" y="{y + 18}" font-weight="bold">{escape(label)}</text>'
            f'<text x="{x + 8}" y="{y + 35}" fill="#444">{escape(n["type"].replace("_", " "))} '
            f"{escape(digest[:12])}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)
