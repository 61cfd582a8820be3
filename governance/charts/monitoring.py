"""SVG charts of monitoring over time: a figure per window with its limits (and interval band),
and a columns x windows heatmap of verdicts. Hand-written SVG like ``charts.gates``:
deterministic bytes, every text XML-escaped, for the admin and the reports."""

from xml.sax.saxutils import escape

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 620, 230, 56, 16, 30, 46
VERDICT_COLOURS = {"ok": "#3c8d40", "inconclusive": "#b0b0b0", "warn": "#e0a100", "alert": "#c0392b", None: "#ffffff"}


def _attr(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def time_chart(title: str, points, *, warn=None, alert=None, value_format="{:.3f}") -> str:
    """A line over windows. POINTS: (window label, value or None, (lo, hi) or None, verdict).
    WARN and ALERT draw dashed limit lines; an interval draws a band."""
    points = list(points)
    values = [v for _, v, _, _ in points if v is not None]
    values += [x for _, _, band, _ in points if band for x in band if x is not None]
    values += [x for x in (warn, alert) if x is not None]
    top = max(values + [1e-9]) * 1.1
    bottom = min(values + [0.0])
    bottom = bottom * 1.1 if bottom < 0 else 0.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(points), 1)

    def x(i):
        return LEFT + (i + 0.5) * plot_w / n

    def y(v):
        return TOP + plot_h * (1 - (v - bottom) / (top - bottom))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{_attr(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#999"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#999"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{escape(value_format.format(top))}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">{escape(value_format.format(bottom))}</text>',
    ]
    band = [(i, b) for i, (_, _, b, _) in enumerate(points) if b and None not in b]
    if band:
        upper = " ".join(f"{x(i):.1f},{y(b[1]):.1f}" for i, b in band)
        lower = " ".join(f"{x(i):.1f},{y(b[0]):.1f}" for i, b in reversed(band))
        parts.append(f'<polygon points="{upper} {lower}" fill="#4a78b5" fill-opacity="0.18" stroke="none"/>')
    for limit, colour, name in ((warn, "#e0a100", "warn"), (alert, "#c0392b", "alert")):
        if limit is None or (name == "warn" and warn == alert):
            continue
        parts.append(f'<line x1="{LEFT}" y1="{y(limit):.1f}" x2="{WIDTH - RIGHT}" y2="{y(limit):.1f}" '
                     f'stroke="{colour}" stroke-dasharray="5 3"/>')
        # warn labelled at the left, alert at the right: close limits do not overprint each other
        anchor, at = ("start", LEFT + 4) if name == "warn" else ("end", WIDTH - RIGHT)
        parts.append(f'<text x="{at}" y="{y(limit) - 3:.1f}" text-anchor="{anchor}" fill="{colour}">'
                     f'{name} {escape(value_format.format(limit))}</text>')
    line = [(i, v) for i, (_, v, _, _) in enumerate(points) if v is not None]
    if len(line) > 1:
        parts.append('<polyline fill="none" stroke="#4a78b5" stroke-width="1.5" points="'
                     + " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in line) + '"/>')
    for i, (label, value, _, verdict) in enumerate(points):
        if value is not None:
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="4" fill="{VERDICT_COLOURS.get(verdict, "#4a78b5")}">'
                         f"<title>{escape(label)}: {escape(value_format.format(value))} ({escape(str(verdict))})</title></circle>")
        else:
            parts.append(f'<text x="{x(i):.1f}" y="{TOP + plot_h - 4}" text-anchor="middle" fill="#777">n/a</text>')
        parts.append(f'<text x="{x(i):.1f}" y="{TOP + plot_h + 14}" text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def verdict_heatmap(title: str, rows, windows) -> str:
    """ROWS: (row label, [verdict or None per window]); WINDOWS: the window labels."""
    rows, windows = list(rows), list(windows)
    label_w, cell, head = 150, 40, 44
    width = max(label_w + cell * max(len(windows), 1), label_w + 4 * 95) + 10
    height = head + cell * len(rows) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_attr(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for j, w in enumerate(windows):
        parts.append(f'<text x="{label_w + j * cell + cell / 2:.1f}" y="{head - 6}" text-anchor="middle">{escape(w)}</text>')
    for i, (label, verdicts) in enumerate(rows):
        y0 = head + i * cell
        parts.append(f'<text x="{label_w - 6}" y="{y0 + cell - 9}" text-anchor="end">{escape(label)}</text>')
        for j, verdict in enumerate(verdicts):
            parts.append(f'<rect x="{label_w + j * cell}" y="{y0}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill="{VERDICT_COLOURS.get(verdict, "#ffffff")}" stroke="#ddd">'
                         f"<title>{escape(label)} · {escape(windows[j])}: {escape(str(verdict))}</title></rect>")
    legend_y = head + cell * len(rows) + 18
    for k, verdict in enumerate(("ok", "inconclusive", "warn", "alert")):
        parts.append(f'<rect x="{label_w + k * 95}" y="{legend_y - 10}" width="12" height="12" fill="{VERDICT_COLOURS[verdict]}"/>')
        parts.append(f'<text x="{label_w + k * 95 + 16}" y="{legend_y}">{verdict}</text>')
    parts.append("</svg>")
    return "".join(parts)
