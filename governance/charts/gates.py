"""SVG bar charts of a gate result: one by-group chart per fairness metric and a SHAP
importance chart. Hand-written SVG: deterministic bytes, no plotting backend, safe to
inline in the admin and in PDFs (every text is XML-escaped)."""

from xml.sax.saxutils import escape

GROUP_METRICS = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
WIDTH, BAR, GAP, LABEL_W, TOP = 560, 18, 6, 170, 34
LABEL_CHARS = 24  # what fits in LABEL_W at 12px; longer labels are shortened, in full on hover


def _label(text: str) -> str:
    """The SVG text of a bar's label: shortened to fit left of the bars (a long group or
    intersection name ran off the chart's left edge), the full label in a <title>."""
    shown = text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"
    return f"{escape(shown)}<title>{escape(text)}</title>"


def bar_chart(title: str, bars, *, maximum=None, marker=None, marker_label="", value_format="{:.3f}") -> str:
    """A horizontal bar chart. BARS is a list of (label, value or None); MARKER draws a
    vertical reference line (a limit) at that value."""
    values = [v for _, v in bars if v is not None]
    top = maximum if maximum is not None else max([*values, marker or 0, 1e-12])
    plot_w = WIDTH - LABEL_W - 70
    height = TOP + len(bars) * (BAR + GAP) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title, {chr(34): "&quot;"})}" '
        'font-family="sans-serif" font-size="12">',
        f'<title>{escape(title)}</title>',
        f'<text x="4" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(bars):
        y = TOP + i * (BAR + GAP)
        parts.append(f'<text x="{LABEL_W - 6}" y="{y + BAR - 5}" text-anchor="end">{_label(str(label))}</text>')
        if value is None:
            parts.append(f'<text x="{LABEL_W + 4}" y="{y + BAR - 5}" fill="#777">undefined</text>')
            continue
        w = max(0.0, min(1.0, value / top)) * plot_w if top > 0 else 0
        parts.append(f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR}" fill="#4a78b5"/>')
        parts.append(f'<text x="{LABEL_W + w + 4:.1f}" y="{y + BAR - 5}">{escape(value_format.format(value))}</text>')
    if marker is not None and top > 0:
        x = LABEL_W + min(1.0, marker / top) * plot_w
        bottom = TOP + len(bars) * (BAR + GAP)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{bottom}" stroke="#c0392b" stroke-dasharray="4 3"/>')
        if marker_label:
            parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" fill="#c0392b" text-anchor="middle">{escape(marker_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def fairness_charts(result: dict) -> list[tuple[str, str]]:
    """(title, svg) for every sensitive feature (or intersection) and group metric."""
    charts = []
    for feature in (result.get("fairness") or {}).get("features", []):
        for metric in GROUP_METRICS:
            bars = [(g["group"], g.get(metric)) for g in feature["groups"]]
            title = f"{metric.replace('_', ' ')} by {feature['name']}"
            marker = None
            label = ""
            if metric == "selection_rate":
                rates = [v for _, v in bars if v is not None]
                if rates:
                    marker, label = 0.8 * max(rates), "4/5 of the highest"
            charts.append((title, bar_chart(title, bars, maximum=1.0, marker=marker, marker_label=label)))
    return charts


def importance_chart(result: dict, *, top=15) -> str | None:
    """Mean |SHAP| per raw input column, largest first (None without explainability)."""
    figures = result.get("explainability")
    if not figures or not figures.get("ranking"):
        return None
    ranking = figures["ranking"][:top]
    bars = [(c, figures["importance"][c]) for c in ranking]
    title = f"Mean |SHAP| per input column ({figures['explainer']}, {figures['model_output']})"
    return bar_chart(title, bars, value_format="{:.4f}")


def gate_run_charts(result: dict | None) -> list[tuple[str, str]]:
    """(title, svg) of every chart of a gate result: SHAP importance first, then fairness by group.

    The one assembly of a run's pictures, for the admin pages and the reports.
    """
    if not result:
        return []
    importance = importance_chart(result)
    return ([("SHAP importance", importance)] if importance else []) + fairness_charts(result)
