"""Gate policy documents: their schema, canonical digest, shipped defaults, and the pure
judgement of computed figures against a policy.

A policy is a JSON document. ``policy_parse`` validates it and fills every default in, so
that two documents meaning the same thing have the same canonical bytes and digest: the
digest of the *normalised* document is what a gate run records and the ledger holds.

Verdicts (``Verdict``, the one vocabulary of gate outcomes that runs, releases, attestations
and reports use) are ``passed``, ``failed``, ``inconclusive`` (a person must decide), ``error``
(the check could not be computed: never a pass) and ``not_applicable`` (the check had nothing to
judge, e.g. no earlier version to compare with: it neither passes nor blocks, and says so).
"""

import copy
import hashlib
import math
from enum import StrEnum

from audit.canonical import canonical_json

from ..rules.limits import quoted_list

SCHEMA_ID = "custos.gate-policy/1"

# The largest integer a policy may hold: RFC 8785 canonical JSON (the digest) represents
# numbers as IEEE doubles, which hold integers exactly only up to 2**53.
MAX_COUNT = 2**53 - 1



class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


# A verdict as a person reads it, and its tone (how the admin colours it). A check that could not
# run (nothing to compare with) is *not applicable*: neither passed nor failed.
VERDICT_LABELS = {
    "passed": "Passed",
    "failed": "Failed",
    "inconclusive": "Inconclusive: a person must decide",
    "error": "Could not be computed (error)",
    "not_applicable": "Not applicable",
}
VERDICT_TONES = {"passed": "good", "failed": "bad", "inconclusive": "warn", "error": "bad", "not_applicable": "none"}


PASSED, FAILED, INCONCLUSIVE, ERROR, NOT_APPLICABLE = (
    Verdict.PASSED, Verdict.FAILED, Verdict.INCONCLUSIVE, Verdict.ERROR, Verdict.NOT_APPLICABLE,
)

PERFORMANCE_METRICS = ("accuracy", "roc_auc", "f1", "precision", "recall")
FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)

# Every fairness figure lies in [0, 1]: differences are between-group spreads of rates, the
# ratio is the smallest rate over the largest. A limit outside that range could never be met
# (ratio >= 1.5) or never be missed, so it is refused instead of silently deciding every run.
_limit = {
    "type": "object",
    "properties": {
        "min": {"type": "number", "minimum": 0, "maximum": 1},
        "max": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "additionalProperties": False,
    "minProperties": 1,
}

POLICY_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "Custos gate policy",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema", "name"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string"},
        "sources": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rule", "source"],
                "additionalProperties": False,
                "properties": {"rule": {"type": "string"}, "source": {"type": "string"}},
            },
        },
        "on_error": {
            "const": "fail",
            "description": "A check that cannot be computed fails the gate; it never passes.",
        },
        "performance": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "metrics": {
                    "type": "object",
                    "propertyNames": {"enum": list(PERFORMANCE_METRICS)},
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "min": {"type": "number", "minimum": 0, "maximum": 1},
                            "max_regression": {"type": "number", "minimum": 0, "maximum": 1},
                        },
                    },
                },
            },
        },
        "fairness": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "sensitive_features": {
                    "description": "Empty: the sensitive columns declared on the evaluation dataset.",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["column"],
                        "additionalProperties": False,
                        "properties": {
                            "column": {"type": "string", "minLength": 1},
                            "cut_points": {
                                "type": "array",
                                "items": {"type": "number"},
                                "minItems": 1,
                                "description": "Bins a numeric column: [25] gives '<25' and '>=25'.",
                            },
                        },
                    },
                },
                "cut_points": {
                    "description": "Bins for numeric sensitive columns, also those declared on the dataset.",
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "number"}, "minItems": 1},
                },
                "intersections": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
                },
                "min_group_size": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
                "max_groups": {"type": "integer", "minimum": 2, "maximum": 10000},
                "metrics": {
                    "type": "object",
                    "propertyNames": {"enum": list(FAIRNESS_METRICS)},
                    "additionalProperties": _limit,
                },
                "bootstrap": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "resamples": {"type": "integer", "minimum": 0, "maximum": 100000},
                        "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                    },
                },
            },
        },
        "explainability": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "background_rows": {"type": "integer", "minimum": 1, "maximum": 10000},
                "explained_rows": {"type": "integer", "minimum": 1, "maximum": 20000},
                "time_budget_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
                "top_k": {"type": "integer", "minimum": 0, "maximum": 10000},
                "max_share": {"type": "number", "minimum": 0, "maximum": 1},
                "proxies": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "max_additivity_error": {"type": "number", "minimum": 0, "maximum": 1e6},
                "min_ranking_stability": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
    },
}

DEFAULTS = {
    "description": "",
    "sources": [],
    "on_error": "fail",
    "performance": {"metrics": {}},
    "fairness": {
        "sensitive_features": [],
        "cut_points": {},
        "intersections": [],
        "min_group_size": 30,
        "max_groups": 50,
        "metrics": {},
        "bootstrap": {"resamples": 1000, "confidence": 0.95},
    },
    "explainability": {
        "enabled": True,
        "background_rows": 100,
        "explained_rows": 500,
        "time_budget_seconds": 120,
        "top_k": 3,
        "max_share": 0.1,
        "proxies": {},
        "max_additivity_error": 1e-4,
        "min_ranking_stability": 0.9,
    },
}

# The shipped default for EU AI Act high-risk systems (Annex III: creditworthiness,
# employment, ...). Every threshold names where it comes from; the ones that are an
# institution's choice say so.
HIGH_RISK_DEFAULT = {
    "schema": SCHEMA_ID,
    "name": "High risk (default)",
    "description": (
        "Default release gate for EU AI Act high-risk systems. Fairness is checked on the "
        "sensitive columns declared on the evaluation dataset unless the policy names them."
    ),
    "sources": [
        {
            "rule": "demographic_parity_ratio >= 0.8",
            "source": "Four-fifths rule: US EEOC Uniform Guidelines on Employee Selection "
            "Procedures, 29 CFR 1607.4(D) (a selection rate below 4/5 of the highest group's "
            "is evidence of adverse impact).",
        },
        {
            "rule": "demographic_parity_difference, equalized_odds_difference, equal_opportunity_difference <= 0.1",
            "source": "The fairness range of -0.1..0.1 for statistical parity, equal opportunity "
            "and average odds differences used by IBM AI Fairness 360 (Bellamy et al., 2018, "
            "AIF360 guidance and web demo).",
        },
        {
            "rule": "confidence intervals: 1000 bootstrap resamples, 95 %; a straddling interval is inconclusive",
            "source": "Percentile bootstrap (Efron & Tibshirani, An Introduction to the Bootstrap, 1993).",
        },
        {
            "rule": "age binned at 25 (under 25 / 25 and over)",
            "source": "Kamiran & Calders, Classifying without discriminating (2009), and later work "
            "on the German credit data use age <= 25 as the protected group; institution's choice "
            "for other data.",
        },
        {
            "rule": "min_group_size 30",
            "source": "Rule of thumb for normal-approximation intervals; institution's choice.",
        },
        {
            "rule": "roc_auc >= 0.7",
            "source": "Hosmer, Lemeshow & Sturdivant, Applied Logistic Regression, 3rd ed. "
            "(2013), 5.2.4: 0.7-0.8 is acceptable discrimination.",
        },
        {
            "rule": "max_regression 0.02 against the last approved version",
            "source": "Institution's choice, in the manner of TFX Evaluator change thresholds.",
        },
        {
            "rule": "min_ranking_stability (nDCG) 0.9",
            "source": "Amazon SageMaker Clarify feature attribution drift: an alert is raised "
            "when nDCG falls below 0.90.",
        },
        {
            "rule": "sensitive feature or proxy not in the top 3 and at most 10 % of total attribution",
            "source": "Institution's choice (EU AI Act Art. 10(2)(f), 15: examination for possible biases).",
        },
    ],
    "on_error": "fail",
    "performance": {
        "metrics": {
            "roc_auc": {"min": 0.7, "max_regression": 0.02},
            "accuracy": {"min": 0.65, "max_regression": 0.02},
            "f1": {"max_regression": 0.02},
        }
    },
    "fairness": {
        "sensitive_features": [],
        "cut_points": {"age": [25]},
        "intersections": [],
        "min_group_size": 30,
        "metrics": {
            "demographic_parity_ratio": {"min": 0.8},
            "demographic_parity_difference": {"max": 0.1},
            "equalized_odds_difference": {"max": 0.1},
            "equal_opportunity_difference": {"max": 0.1},
        },
        "bootstrap": {"resamples": 1000, "confidence": 0.95},
    },
    "explainability": {
        "background_rows": 100,
        "explained_rows": 500,
        "time_budget_seconds": 120,
        "top_k": 3,
        "max_share": 0.1,
        "max_additivity_error": 1e-4,
        "min_ranking_stability": 0.9,
    },
}


class PolicyError(ValueError):
    """A policy document is invalid; ``messages`` says every problem found."""

    def __init__(self, messages):
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


def _merge(defaults, given):
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("metrics", "proxies", "cut_points"):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _odd_numbers(value, path="(document)"):
    """Numbers no digest can hold: infinities, NaN and integers beyond 2**53 (JSON allows
    1e999 and 10**400; canonical JSON and float comparisons do not)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _odd_numbers(item, f"{path}/{key}" if path != "(document)" else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _odd_numbers(item, f"{path}/{i}")
    elif isinstance(value, float) and not math.isfinite(value):
        yield f"{path}: numbers must be finite."
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_COUNT:
        yield f"{path}: integers in a policy are at most 2**53 - 1 in size."


def policy_parse(document) -> dict:
    """Validate DOCUMENT and return it normalised (every default filled in).

    Raises PolicyError naming every problem.
    """
    odd = list(_odd_numbers(document))
    if odd:
        raise PolicyError(odd)
    import jsonschema  # 0.2 s to import: only where a policy is parsed, not at every Django start

    validator = jsonschema.Draft202012Validator(POLICY_SCHEMA)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise PolicyError(
            f"{'/'.join(str(p) for p in e.absolute_path) or '(document)'}: {e.message}" for e in errors
        )
    policy = _merge(DEFAULTS, document)
    problems = []
    fairness = policy["fairness"]
    names = [f["column"] for f in fairness["sensitive_features"]]
    if len(set(names)) != len(names):
        problems.append("fairness/sensitive_features: a column is named twice.")
    for spec in fairness["sensitive_features"]:
        cuts = spec.get("cut_points")
        if cuts and sorted(set(cuts)) != cuts:
            problems.append(f"fairness/sensitive_features/{spec['column']}: cut_points must increase strictly.")
    for column, cuts in fairness["cut_points"].items():
        if sorted(set(cuts)) != cuts:
            problems.append(f"fairness/cut_points/{column}: cut_points must increase strictly.")
    if names:
        for inter in fairness["intersections"]:
            unknown = [c for c in inter if c not in names]
            if unknown:
                problems.append(f"fairness/intersections: {quoted_list(unknown)} not among sensitive_features.")
    for metric, limit in fairness["metrics"].items():
        if "min" in limit and "max" in limit and limit["min"] > limit["max"]:
            problems.append(f"fairness/metrics/{metric}: min is above max.")
    if problems:
        raise PolicyError(problems)
    return policy


def policy_digest(policy: dict) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical bytes of the normalised policy."""
    return hashlib.sha256(canonical_json(policy_parse(policy))).hexdigest()


def high_risk_default() -> dict:
    return policy_parse(HIGH_RISK_DEFAULT)


# ---------------------------------------------------------------------------------------
# Pure judgement: figures in, verdicts out.


def combine(verdicts) -> Verdict:
    """The verdict of several checks: error > failed > inconclusive > passed.

    Checks that were not applicable count for nothing; with no applicable check at all the gate
    judged nothing, which is inconclusive (a person must decide), never a pass.
    """
    verdicts = [v for v in verdicts if v != NOT_APPLICABLE]
    for v in (ERROR, FAILED, INCONCLUSIVE):
        if v in verdicts:
            return v
    return PASSED if verdicts else INCONCLUSIVE


def judge_limit(value, limit: dict, ci=None) -> tuple[str, str]:
    """Judge VALUE (with optional confidence interval CI) against LIMIT {"min": a, "max": b}.

    A value inside the limits passes only if its whole interval does; a value outside fails
    only if its whole interval does; an interval that straddles a limit is inconclusive. A
    value that could not be computed (None or NaN) is inconclusive.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return INCONCLUSIVE, "the value is undefined on this data"
    lo, hi = (value, value) if ci is None else ci
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)) or (isinstance(hi, float) and math.isnan(hi)):
        return INCONCLUSIVE, "the confidence interval is undefined on this data"
    lo, hi = min(lo, hi, value), max(lo, hi, value)
    failures, straddles = [], []
    if "min" in limit:
        if hi < limit["min"]:
            failures.append(f"below the minimum {limit['min']}")
        elif lo < limit["min"]:
            straddles.append(f"the interval [{lo:.4g}, {hi:.4g}] straddles the minimum {limit['min']}")
    if "max" in limit:
        if lo > limit["max"]:
            failures.append(f"above the maximum {limit['max']}")
        elif hi > limit["max"]:
            straddles.append(f"the interval [{lo:.4g}, {hi:.4g}] straddles the maximum {limit['max']}")
    if failures:
        return FAILED, f"{value:.4g} is " + " and ".join(failures)
    if straddles:
        return INCONCLUSIVE, "; ".join(straddles)
    return PASSED, f"{value:.4g} is within the limits"


def check(area, name, verdict, reason, **figures) -> dict:
    return {"area": area, "name": name, "verdict": verdict, "reason": reason, **figures}


def judge_performance(figures: dict, policy: dict, previous: dict | None = None) -> list[dict]:
    """Checks of performance FIGURES ({metric: value}) against minimums and, given the
    PREVIOUS approved version's figures, against the largest regression allowed."""
    checks = []
    for metric, rule in sorted(policy["performance"]["metrics"].items()):
        value = figures.get(metric)
        if "min" in rule:
            verdict, reason = judge_limit(value, {"min": rule["min"]})
            checks.append(check("performance", metric, verdict, reason, value=value, limit={"min": rule["min"]}))
        if "max_regression" in rule:
            before = (previous or {}).get(metric)
            if before is None:
                checks.append(
                    check("performance", f"{metric} regression", NOT_APPLICABLE,
                          "not applicable: no earlier approved version gated under this policy to compare with",
                          value=value, previous=None)
                )
            else:
                floor = before - rule["max_regression"]
                verdict, reason = judge_limit(value, {"min": floor})
                checks.append(
                    check("performance", f"{metric} regression", verdict,
                          f"previous {before:.4g}, allowed regression {rule['max_regression']}: {reason}",
                          value=value, previous=before, limit={"min": floor})
                )
    return checks


def judge_fairness(figures: dict, policy: dict) -> list[dict]:
    """Checks of fairness FIGURES (from governance.gates.fairness.fairness_figures)."""
    fairness = policy["fairness"]
    checks = []
    if not fairness["metrics"]:
        return checks
    if not figures["features"]:
        return [check("fairness", "sensitive features", INCONCLUSIVE,
                      "no sensitive feature was named by the policy or declared on the dataset")]
    for feature in figures["features"]:
        name = feature["name"]
        blockers = []
        small = [g for g in feature["groups"] if g["count"] < fairness["min_group_size"]]
        if small:
            blockers.append(
                "groups smaller than the minimum size "
                f"{fairness['min_group_size']}: " + quoted_list(f"{g['group']} ({g['count']})" for g in small)
            )
        if feature.get("empty_groups"):
            blockers.append("empty intersections: " + quoted_list(feature["empty_groups"]))
        if len(feature["groups"]) < 2:
            blockers.append("fewer than two groups are present")
        for metric, limit in sorted(fairness["metrics"].items()):
            figure = feature["metrics"][metric]
            verdict, reason = judge_limit(figure["value"], limit, figure.get("ci"))
            if blockers and verdict != FAILED:
                verdict, reason = INCONCLUSIVE, "; ".join(blockers)
            elif blockers:
                reason = f"{reason} (note: {'; '.join(blockers)})"
            checks.append(
                check("fairness", f"{metric} by {name}", verdict, reason,
                      feature=name, value=figure["value"], ci=figure.get("ci"), limit=limit)
            )
    return checks


def judge_explainability(figures: dict, policy: dict, sensitive_columns, previous: dict | None = None) -> list[dict]:
    """Checks of explainability FIGURES (from governance.gates.explain.explain)."""
    rules = policy["explainability"]
    checks = []
    ranking = figures["ranking"]
    shares = figures["shares"]
    watched = {}
    for column in sensitive_columns:
        watched[column] = f"sensitive feature {column}"
        for proxy in rules["proxies"].get(column, []):
            watched.setdefault(proxy, f"proxy {proxy} of {column}")
    for column, label in sorted(watched.items()):
        if column not in shares:
            checks.append(check("explainability", f"{label} attribution", NOT_APPLICABLE,
                                "not applicable: not an input of the model", column=column, rank=None, share=0.0))
            continue
        rank = ranking.index(column) + 1
        share = shares[column]
        problems = []
        if rank <= rules["top_k"]:
            problems.append(f"ranked {rank}, within the top {rules['top_k']}")
        if share > rules["max_share"]:
            problems.append(f"share {share:.3f} is above {rules['max_share']}")
        verdict = FAILED if problems else PASSED
        reason = "; ".join(problems) or f"ranked {rank} with share {share:.3f}"
        checks.append(check("explainability", f"{label} attribution", verdict, reason,
                            column=column, rank=rank, share=share))
    if figures.get("exact") and figures.get("additivity_error") is not None:
        verdict, reason = judge_limit(figures["additivity_error"], {"max": rules["max_additivity_error"]})
        if verdict == FAILED:
            verdict = ERROR  # the explanation does not add up to the model's output: not trustworthy
        checks.append(check("explainability", "additivity", verdict, reason, value=figures["additivity_error"]))
    if figures.get("budget_exhausted"):
        checks.append(check("explainability", "time budget", INCONCLUSIVE,
                            f"the time budget ran out after {figures['explained_count']} rows"))
    stability = figures.get("ranking_stability")
    if stability is not None:
        verdict, reason = judge_limit(stability, {"min": rules["min_ranking_stability"]})
        checks.append(check("explainability", "ranking stability (nDCG)", verdict, reason, value=stability))
    elif previous is None:
        checks.append(check("explainability", "ranking stability (nDCG)", NOT_APPLICABLE,
                            "not applicable: no earlier approved version gated under this policy to compare with",
                            value=None))
    return checks
