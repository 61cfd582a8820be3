import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.gates.policy import (
    ERROR,
    FAILED,
    HIGH_RISK_DEFAULT,
    INCONCLUSIVE,
    PASSED,
    SCHEMA_ID,
    PolicyError,
    combine,
    high_risk_default,
    judge_fairness,
    judge_limit,
    judge_performance,
    policy_digest,
    policy_parse,
)


def test_shipped_default_is_valid_and_cites_its_sources():
    policy = high_risk_default()
    assert policy["fairness"]["metrics"]["demographic_parity_ratio"] == {"min": 0.8}
    assert policy["fairness"]["metrics"]["demographic_parity_difference"] == {"max": 0.1}
    assert any("29 CFR 1607.4(D)" in s["source"] for s in policy["sources"])
    assert policy["on_error"] == "fail"


def test_digest_ignores_key_order_and_spelled_out_defaults():
    minimal = {"schema": SCHEMA_ID, "name": "p"}
    spelled = policy_parse(minimal)
    reordered = dict(reversed(list(spelled.items())))
    assert policy_digest(minimal) == policy_digest(spelled) == policy_digest(reordered)
    changed = copy.deepcopy(spelled)
    changed["fairness"]["min_group_size"] = 31
    assert policy_digest(changed) != policy_digest(minimal)


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"schema": "other"}, "schema"),
        ({"performance": {"metrics": {"gini": {"min": 0.5}}}}, "performance/metrics"),
        ({"fairness": {"metrics": {"demographic_parity_ratio": {"least": 0.8}}}}, "fairness/metrics"),
        ({"fairness": {"bootstrap": {"confidence": 1.5}}}, "fairness/bootstrap/confidence"),
        ({"on_error": "pass"}, "on_error"),
        ({"fairness": {"sensitive_features": [{"column": "sex"}], "intersections": [["sex", "age"]]}}, "age"),
        ({"fairness": {"sensitive_features": [{"column": "age", "cut_points": [40, 25]}]}}, "cut_points"),
        ({"fairness": {"metrics": {"demographic_parity_ratio": {"min": 0.9, "max": 0.8}}}}, "min is above max"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_policies_are_refused_naming_the_problem(patch, message):
    with pytest.raises(PolicyError) as err:
        policy_parse({"schema": SCHEMA_ID, "name": "p", **patch})
    assert message in str(err.value)


def test_limit_judgement_with_confidence_intervals():
    assert judge_limit(0.05, {"max": 0.1}, [0.01, 0.09])[0] == PASSED
    assert judge_limit(0.05, {"max": 0.1}, [0.01, 0.12])[0] == INCONCLUSIVE
    assert judge_limit(0.3, {"max": 0.1}, [0.2, 0.4])[0] == FAILED
    assert judge_limit(0.85, {"min": 0.8}, [0.78, 0.9])[0] == INCONCLUSIVE
    assert judge_limit(None, {"min": 0.8})[0] == INCONCLUSIVE
    assert judge_limit(float("nan"), {"min": 0.8})[0] == INCONCLUSIVE


finite = st.floats(min_value=-10, max_value=10, allow_nan=False)


@given(value=finite, a=finite, b=finite, limit=finite, kind=st.sampled_from(["min", "max"]))
def test_limit_judgement_never_passes_a_value_whose_interval_crosses_the_limit(value, a, b, limit, kind):
    verdict, _ = judge_limit(value, {kind: limit}, [a, b])
    lo, hi = min(a, b, value), max(a, b, value)
    inside = (lambda x: x >= limit) if kind == "min" else (lambda x: x <= limit)
    if verdict == PASSED:
        assert inside(lo) and inside(hi)
    elif verdict == FAILED:
        assert not inside(lo) and not inside(hi)
    else:
        assert inside(lo) != inside(hi)


@given(st.lists(st.sampled_from([PASSED, FAILED, INCONCLUSIVE, ERROR])))
def test_combined_verdict_passes_only_if_every_check_passes(verdicts):
    result = combine(verdicts)
    if result == PASSED:
        assert verdicts and all(v == PASSED for v in verdicts)
    if ERROR in verdicts:
        assert result == ERROR


def test_performance_minimums_and_regression():
    policy = policy_parse(HIGH_RISK_DEFAULT)
    checks = {c["name"]: c for c in judge_performance({"roc_auc": 0.75, "accuracy": 0.6, "f1": 0.7}, policy,
                                                       {"roc_auc": 0.8, "accuracy": 0.6, "f1": 0.71})}
    assert checks["roc_auc"]["verdict"] == PASSED
    assert checks["roc_auc regression"]["verdict"] == FAILED  # 0.75 < 0.8 - 0.02
    assert checks["accuracy"]["verdict"] == FAILED  # below 0.65
    assert checks["f1 regression"]["verdict"] == PASSED  # within 0.02
    missing = {c["name"]: c for c in judge_performance({"roc_auc": None, "accuracy": 0.7, "f1": 0.7}, policy)}
    assert missing["roc_auc"]["verdict"] == INCONCLUSIVE


def _feature(counts, value=0.05, ci=(0.01, 0.09)):
    return {
        "name": "sex",
        "groups": [{"group": g, "count": n} for g, n in counts.items()],
        "empty_groups": [],
        "metrics": {m: {"value": value, "ci": list(ci)} for m in (
            "demographic_parity_difference", "demographic_parity_ratio",
            "equalized_odds_difference", "equal_opportunity_difference")},
    }


def test_small_groups_make_fairness_inconclusive_never_passed():
    policy = policy_parse({"schema": SCHEMA_ID, "name": "p",
                           "fairness": {"metrics": {"demographic_parity_difference": {"max": 0.1}}}})
    ok = judge_fairness({"features": [_feature({"a": 100, "b": 100})]}, policy)
    assert [c["verdict"] for c in ok] == [PASSED]
    small = judge_fairness({"features": [_feature({"a": 100, "b": 12})]}, policy)
    assert [c["verdict"] for c in small] == [INCONCLUSIVE]
    assert "b (12)" in small[0]["reason"]
    none = judge_fairness({"features": []}, policy)
    assert [c["verdict"] for c in none] == [INCONCLUSIVE]


@pytest.mark.parametrize(
    "patch, message",
    [
        # A fairness figure lies in [0, 1]: a limit outside it decides every run in advance.
        ({"fairness": {"metrics": {"demographic_parity_ratio": {"min": 1.5}}}}, "demographic_parity_ratio/min"),
        ({"fairness": {"metrics": {"demographic_parity_difference": {"max": -0.1}}}}, "demographic_parity_difference/max"),
        ({"fairness": {"metrics": {"equalized_odds_difference": {"max": 2}}}}, "equalized_odds_difference/max"),
        # Numbers that JSON allows but no digest (RFC 8785) or float comparison can hold.
        ({"fairness": {"metrics": {"demographic_parity_difference": {"max": 10**400}}}}, "at most 2**53"),
        ({"fairness": {"min_group_size": 10**30}}, "fairness/min_group_size"),
        ({"explainability": {"top_k": 2**70}}, "explainability/top_k"),
        ({"fairness": {"cut_points": {"age": [float("inf")]}}}, "fairness/cut_points/age/0: numbers must be finite"),
        ({"fairness": {"sensitive_features": [{"column": "age", "cut_points": [2**60]}]}}, "cut_points/0"),
        ({"explainability": {"time_budget_seconds": 1e300}}, "explainability/time_budget_seconds"),
    ],
)
def test_limits_outside_what_a_figure_can_be_and_odd_numbers_are_refused(patch, message):
    with pytest.raises(PolicyError) as err:
        policy_parse({"schema": SCHEMA_ID, "name": "p", **patch})
    assert message in str(err.value)
