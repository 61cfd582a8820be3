import xml.etree.ElementTree as ET

from governance.gates.charts import bar_chart, fairness_charts, importance_chart

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
