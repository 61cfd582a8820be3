"""Release gates: the pure computational core (no database).

``evaluate.evaluate`` runs a model on an evaluation set and judges performance, fairness
(fairlearn) and explainability (shap) against a policy; it is imported where a gate runs (a
worker), never when Django starts, because numpy, pandas, scikit-learn, shap and fairlearn cost
seconds to import. ``policy`` holds the policy schema, its digest, the shipped defaults, the
verdicts and the pure judgement; ``inputs`` the checks a submission must pass first.
"""

from .inputs import GateInputError, input_problems, sensitive_specs
from .policy import HIGH_RISK_DEFAULT, PolicyError, Verdict, policy_digest, policy_parse

__all__ = [
    "HIGH_RISK_DEFAULT",
    "GateInputError",
    "PolicyError",
    "Verdict",
    "input_problems",
    "policy_digest",
    "policy_parse",
    "sensitive_specs",
]
