"""Monitoring plans' defaults per risk tier, Art. 73 deadlines and monitoring's role permissions.

Pure: no Django. Every default names the sources (``statistics.SOURCES`` keys) it rests on and
its caveats, so a plan shows why its limits are what they are.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import asdict, fields
from datetime import timedelta

from audit.canonical import canonical_json

from .vocabulary import SOURCES, Limits

POLICY_FORMAT = "custos.monitoring.plan/1"

# The plan's parts that a new version may change; the reference and the window origin are fixed
# once windows exist (a window is judged against the reference it was aggregated on).
EDITABLE = ("window_days", "label_delay_days", "limits", "intersections", "notes", "origin")

_CAVEATS = [
    "PSI limits 0.1/0.25 are a rule of thumb with no documented origin and blind to sample size: n and the "
    "null's 95th percentile are recorded with every figure; at large n prefer the effect sizes.",
    "Chi-square p-values become significant for negligible shifts at large n: read Cramér's V and the JS distance.",
    "Over many columns and windows about 5% of tests warn by chance.",
    "Performance is judged only once labels arrive (after the label delay), against the gate's own estimate.",
    "The four-fifths rule is a US employment rule of thumb, not an EU legal threshold.",
]

_BASE = {
    "window_days": 7,
    "label_delay_days": 90,
    "limits": asdict(Limits()),
    "intersections": [],
    "notes": "",
}

# Higher tiers judge on more rows and keep the labels' join records longer; limits stay the
# statistics module's cited defaults.
DEFAULT_POLICIES = {
    "high": {**_BASE, "limits": {**asdict(Limits()), "min_rows": 200, "min_labelled": 50, "min_group": 30}},
    "limited": {**_BASE, "window_days": 14, "label_delay_days": 60},
    "minimal": {**_BASE, "window_days": 28, "label_delay_days": 30, "limits": {**asdict(Limits()), "min_group": 20}},
}

SOURCES_USED = sorted(SOURCES)

# Art. 73 AI Act: report a serious incident within 15 days of awareness; 10 days where it may
# have caused a death; 2 days for a widespread infringement or a serious incident of Art. 3(49)(b)
# (critical infrastructure).
INCIDENT_DEADLINE_DAYS = {"serious": 15, "death": 10, "widespread": 2}
INCIDENT_CATEGORIES = {
    "serious": "Serious incident (Art. 73(2): 15 days)",
    "death": "Death of a person (Art. 73(4): 10 days)",
    "widespread": "Widespread infringement or critical infrastructure (Art. 73(3): 2 days)",
}


def incident_deadline(category: str, aware_at):
    """When a serious incident of CATEGORY must be reported, counted from AWARE_AT."""
    if category not in INCIDENT_DEADLINE_DAYS:
        raise ValueError(f"An incident category is one of {', '.join(INCIDENT_DEADLINE_DAYS)}.")
    return aware_at + timedelta(days=INCIDENT_DEADLINE_DAYS[category])


def default_policy(risk_tier: str) -> dict:
    """The default plan for RISK_TIER, with its sources and caveats."""
    base = copy.deepcopy(DEFAULT_POLICIES.get(risk_tier, DEFAULT_POLICIES["high"]))
    return {"format": POLICY_FORMAT, "risk_tier": risk_tier, **base,
            "sources": {k: SOURCES[k] for k in SOURCES_USED}, "caveats": list(_CAVEATS)}


def limits_from(policy: dict) -> Limits:
    """The Limits of POLICY (unknown keys refused)."""
    known = {f.name for f in fields(Limits)}
    extra = set(policy["limits"]) - known
    if extra:
        raise ValueError(f"Unknown limits: {', '.join(sorted(extra))}.")
    return Limits(**policy["limits"])


def policy_changed(policy: dict, changes: dict) -> dict:
    """POLICY with CHANGES applied (only EDITABLE keys; limits merged key by key, checked)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"Only {', '.join(EDITABLE)} can change in a new plan version (not {', '.join(sorted(unknown))}).")
    out = copy.deepcopy(policy)
    for key, value in changes.items():
        if key == "limits":
            out["limits"] = {**out["limits"], **value}
            limits = limits_from(out)
            if not (0 < limits.psi_warn <= limits.psi_alert and 0 < limits.js_warn <= limits.js_alert
                    and 0 < limits.wasserstein_warn <= limits.wasserstein_alert):
                raise ValueError("Each warn limit must be positive and at most its alert limit.")
            if limits.min_rows < 1 or limits.min_labelled < 1 or limits.min_group < 1:
                raise ValueError("Minimum sizes must be at least 1.")
        elif key in ("window_days", "label_delay_days"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > 366:
                raise ValueError(f"{key} must be a whole number of days between 1 and 366.")
            out[key] = value
        else:
            out[key] = value
    return out


def digest(value) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


# Model permissions of monitoring per role (role names as governance.rules.roles spells them).
_READ = ["view_monitoringplan", "view_monitoringplanversion", "view_monitoringwindow", "view_ingestedbatch",
         "view_finding", "view_incident"]
ROLE_PERMISSIONS = {
    "Data Scientist": _READ,
    "Pipeline": ["view_monitoringplan", "view_monitoringwindow", "add_ingestedbatch"],
    "Compliance Officer": _READ + ["add_incident", "change_incident", "revoke_finding"],
    "Model Risk Validator": _READ + ["change_monitoringplan", "change_finding", "add_incident", "change_incident"],
    "Head of Model Risk": _READ + ["change_monitoringplan"],
    "Auditor": _READ,
}
