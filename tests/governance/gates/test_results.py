"""Removing a person's per-row figures from a stored gate result: rows go, aggregates stay."""

import hashlib

from audit.canonical import canonical_json
from governance.gates.results import redact_rows

RESULT = {
    "verdict": "passed",
    "fairness": {"features": [{"name": "sex", "value": 0.04}]},
    "explainability": {
        "explained_indices": [2, 5, 9], "raw_values": [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]],
        "background_indices": [1, 5, 7], "explained_count": 3, "importance": {"a": 0.3, "b": 0.4},
    },
}


def test_a_position_goes_from_explained_rows_their_values_and_the_background():
    new, removed = redact_rows(RESULT, [5], reference="ER-2026-0001")
    ex = new["explainability"]
    assert ex["explained_indices"] == [2, 9] and ex["raw_values"] == [[0.1, -0.2], [-0.5, 0.6]]
    assert ex["background_indices"] == [1, 7]
    assert ex["explained_count"] == 3 and ex["importance"] == RESULT["explainability"]["importance"]
    assert new["fairness"] == RESULT["fairness"] and new["verdict"] == "passed"
    assert removed == {"explained_rows": 1, "background_rows": 1, "rows": 1}
    assert new["redactions"] == [{"request": "ER-2026-0001", "explained_rows": 1, "background_rows": 1, "rows": 1,
                                  "previous_result_digest": hashlib.sha256(canonical_json(RESULT)).hexdigest()}]
    assert RESULT["explainability"]["explained_indices"] == [2, 5, 9]  # the input is not changed


def test_background_only_and_nothing_to_remove():
    new, removed = redact_rows(RESULT, [7], reference="ER-2026-0001")
    assert removed == {"explained_rows": 0, "background_rows": 1, "rows": 1}
    assert new["explainability"]["raw_values"] == RESULT["explainability"]["raw_values"]
    same, none = redact_rows(RESULT, [4], reference="ER-2026-0001")
    assert same is RESULT and none["rows"] == 0
