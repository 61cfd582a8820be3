"""The lineage graph (``governance.selectors.lineage``) as a self-contained SVG, left to right."""

from html import escape

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


def graph_svg(graph, href=None) -> str:
    """Draw GRAPH (from upstream/downstream) as SVG text, left to right.

    HREF, if given, maps a node id ("modelversion:5") to the address of its page (or None): each
    box is then a link to the record it stands for."""
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
        url = href(n["id"]) if href else None
        out.append(
            (f'<a href="{escape(url, {chr(34): "&quot;"})}" class="lineage-node">' if url else "")
            + f'<g><title>{escape(n["id"])} {escape(digest)}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{COLORS.get(n["type"], "#eee")}" '
            f'stroke="#333"{stroke}/>'
            f'<text x="{x + 8}" y="{y + 18}" font-weight="bold">{escape(label)}</text>'
            f'<text x="{x + 8}" y="{y + 35}" fill="#444">{escape(n["type"].replace("_", " "))} '
            f"{escape(digest[:12])}</text></g>"
            + ("</a>" if url else "")
        )
    out.append("</svg>")
    return "".join(out)
