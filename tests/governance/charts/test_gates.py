import xml.etree.ElementTree as ET

from governance.charts.gates import bar_chart, fairness_charts, importance_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_bar_chart_is_valid_svg_and_escapes_labels():
    svg = bar_chart('Rate by <group> & "more"', [("<script>", 0.5), ("b", None)], maximum=1.0, marker=0.4)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert "<script>" not in svg
    assert len(root.findall(f"{SVG}rect")) == 1
    assert root.find(f"{SVG}line") is not None


def test_charts_of_a_result():
    result = {
        "fairness": {"features": [{"name": "sex", "groups": [
            {"group": "female", "selection_rate": 0.3, "true_positive_rate": 0.4, "false_positive_rate": 0.1,
             "accuracy": 0.7},
            {"group": "male", "selection_rate": 0.8, "true_positive_rate": 0.9, "false_positive_rate": 0.5,
             "accuracy": 0.75}]}]},
        "explainability": {"explainer": "tree", "model_output": "log_odds", "ranking": ["sex", "age"],
                           "importance": {"sex": 0.9, "age": 0.1}},
    }
    charts = fairness_charts(result)
    assert [t for t, _ in charts][0] == "selection rate by sex"
    for _, svg in charts:
        ET.fromstring(svg)
    importance = ET.fromstring(importance_chart(result))
    texts = [t.text for t in importance.iter(f"{SVG}text")]
    assert texts.index("sex") < texts.index("age")
    assert importance_chart({}) is None


def test_long_group_labels_are_shortened_to_fit_with_the_full_label_on_hover():
    long = "foreign_worker=yes & age>=25 & housing=<own>"
    svg = bar_chart("t", [(long, 0.5), ("short", 0.2)], maximum=1.0)
    texts = ET.fromstring(svg).findall(f"{SVG}text")
    labels = [t for t in texts if t.get("text-anchor") == "end"]
    assert [t.find(f"{SVG}title").text for t in labels] == [long, "short"]
    shown = [t.text for t in labels]
    assert shown[1] == "short"
    assert len(shown[0]) <= 24 and shown[0].endswith("\u2026") and long.startswith(shown[0][:-1])
