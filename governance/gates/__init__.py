"""Release gates: the pure computational core (no database).

``evaluate`` runs a model on an evaluation set and judges performance, fairness (fairlearn)
and explainability (shap) against a policy; ``policy`` holds the policy schema, its digest,
the shipped defaults and the pure judgement; ``charts`` draws the results as SVG.
"""

from .evaluate import GateInputError, differences, evaluate, input_problems, summary
from .policy import HIGH_RISK_DEFAULT, PolicyError, policy_digest, policy_parse

__all__ = [
    "HIGH_RISK_DEFAULT",
    "GateInputError",
    "PolicyError",
    "differences",
    "evaluate",
    "input_problems",
    "policy_digest",
    "policy_parse",
    "summary",
]
