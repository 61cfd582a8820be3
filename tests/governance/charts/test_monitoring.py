"""Monitoring charts: deterministic SVG, limits and bands drawn, every text escaped."""

import xml.etree.ElementTree as ET

from governance.charts.monitoring import time_chart, verdict_heatmap

NS = "{http://www.w3.org/2000/svg}"


def test_time_chart_draws_points_limits_and_band():
    points = [("01-01", 0.05, (0.01, 0.09), "ok"), ("01-08", None, None, "inconclusive"),
              ("01-15", 0.31, (0.2, 0.4), "alert")]
    svg = time_chart("PSI of <amount> & co", points, warn=0.1, alert=0.25)
    assert svg == time_chart("PSI of <amount> & co", points, warn=0.1, alert=0.25)
    root = ET.fromstring(svg)  # well-formed: the title was escaped
    assert root.find(f"{NS}title").text == "PSI of <amount> & co"
    assert len(root.findall(f"{NS}circle")) == 2 and root.find(f"{NS}polygon") is not None
    texts = [t.text for t in root.iter(f"{NS}text") if t.text]
    assert "warn 0.100" in texts and "alert 0.250" in texts and "n/a" in texts
    assert [c.get("fill") for c in root.findall(f"{NS}circle")] == ["#3c8d40", "#c0392b"]


def test_heatmap_has_a_cell_per_column_and_window():
    svg = verdict_heatmap("Drift", [("age", ["ok", "warn"]), ("amount <x>", ["alert", None])], ["w1", "w2"])
    root = ET.fromstring(svg)
    cells = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    assert len(cells) == 4
    assert [c.find(f"{NS}title").text for c in cells][2] == "amount <x> · w1: alert"
