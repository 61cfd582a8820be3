"""The light vocabulary of monitoring: verdicts, the sources every default cites, the limits a
window is judged by, and its time format.

Pure and light on purpose (no numpy, no scipy, no pyarrow): the models, selectors, admin and
policy import these when Django starts, and every ``manage.py`` command pays for what Django's
start imports (``tests/test_architecture.py``). ``statistics`` re-exports them.
"""

from dataclasses import dataclass
from datetime import datetime, timezone

FORMATS = ("csv", "parquet", "jsonl")  # of a batch of production rows
EVALUATION_FORMAT = "custos.monitoring.evaluation/1"
VERDICTS = ("ok", "inconclusive", "warn", "alert")  # in order of severity
PSI_EPSILON = 1e-4

SOURCES = {
    "psi-rule-of-thumb": (
        "PSI limits 0.1 (warn) and 0.25 (alert): an industry rule of thumb widely quoted in credit-scorecard "
        "practice, with no documented origin; blind to sample size, so n is recorded and effect sizes are "
        "preferred at large n."
    ),
    "psi-null": (
        "Yurdakul, B. (2018). Statistical Properties of Population Stability Index. PhD dissertation, Western "
        "Michigan University: PSI of two samples of one distribution is approximately chi2(B-1) (1/n + 1/m). "
        "Caveat: asymptotic; with 1,000 reference and 800 window rows drawn from the German credit rows, about 8% "
        "(not 5%) of windows exceeded the 95th percentile of PSI, JS distance and Wasserstein alike "
        "(tests/monitoring/test_statistics.py)."
    ),
    "psi-epsilon": "Empty-bin proportions floored at 1e-4 as in Evidently's PSI; Custos's choice of floor.",
    "jensen-shannon": (
        "Lin, J. (1991). Divergence measures based on the Shannon entropy. IEEE Trans. Inf. Theory 37(1) 145-151; "
        "Endres & Schindelin (2003), IEEE Trans. Inf. Theory 49(7): its square root is a metric. Base 2, in [0, 1]."
    ),
    "evidently-defaults": (
        "Evidently's default drift method for reference sets over 1,000 rows: Wasserstein distance normed by the "
        "reference's standard deviation (numeric) and Jensen-Shannon distance (categorical), drift at 0.1 "
        "(Evidently documentation, 'Data drift algorithm'). The alert limit 0.2 is Custos's choice (no published source)."
    ),
    "wasserstein-null": (
        "del Barrio, E., Giné, E. & Matrán, C. (1999). Central limit theorems for the Wasserstein distance between "
        "the empirical and the true distributions. Ann. Probab. 27(2) 1009-1071: sqrt(nm/(n+m)) W1 tends to the "
        "integral of |B(F(x))|; its 95th percentile is simulated on the reference's grid (seed in the profile)."
    ),
    "wasserstein-binned": (
        "W1 = integral of |F - G|; from counts on shared bins both CDFs are known at the edges, and the exact value "
        "of the rows lies between the recorded bounds."
    ),
    "chi-square": (
        "Pearson's chi-square test of homogeneity; Cochran, W. G. (1954). Some methods for strengthening the common "
        "chi2 tests. Biometrics 10(4) 417-451 (expected >= 5 in at least 80% of cells, none below 1). p-value limits "
        "0.05 / 0.01 are conventions (Fisher 1925). Caveats: at large n a negligible shift is significant (see "
        "Cramér's V and the JS distance); over many columns and windows about 5% of tests warn by chance."
    ),
    "wilson": (
        "Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference. JASA 22(158) "
        "209-212; recommended by Brown, Cai & DasGupta (2001), Statistical Science 16(2) 101-133."
    ),
    "range-expected": (
        "A new draw exchangeable with m reference draws falls above their maximum with probability 1/(m+1) and below "
        "their minimum with 1/(m+1) (order statistics; Wilks 1941, Ann. Math. Statist. 12(1) 91-96); less with ties."
    ),
    "unseen-expected": (
        "Good, I. J. (1953). The population frequencies of species and the estimation of population parameters. "
        "Biometrika 40(3-4) 237-264: the share of new categories is about singletons/m; Custos uses "
        "(singletons + 1)/(m + 1) so that it is never zero."
    ),
    "integrity-margins": "Integrity limits (expected + 0.01 warn, + 0.05 alert): Custos's defaults, no published source.",
    "performance-tolerance": (
        "Performance limits (0.05 warn, 0.10 alert below the gate's figure): Custos's defaults, no published source. "
        "Caveat: the gate's figure is itself an estimate from its evaluation set."
    ),
    "four-fifths": (
        "Four-fifths rule: Uniform Guidelines on Employee Selection Procedures (1978), 29 CFR 1607.4(D). Caveat: a US "
        "employment-selection rule of thumb, not an EU legal threshold; use the gate policy's limit where it has one."
    ),
    "bootstrap": (
        "Percentile bootstrap (Efron & Tibshirani 1993, An Introduction to the Bootstrap) with (group, predicted) "
        "counts drawn from their multinomial distribution: the same distribution as resampling rows; seed recorded."
    ),
    "minimum-sizes": (
        "Minimum sizes (100 rows per window, 30 labelled rows, 30 rows per group): Custos's floors, no published "
        "source; the intervals widen on their own, the floors stop verdicts resting on a handful of rows."
    ),
    "quantile-grid": "Reference quantiles: the inverted empirical CDF (Hyndman & Fan 1996, type 1), so edges are observed values.",
}


@dataclass(frozen=True)
class Limits:
    """The limits and sizes a window is judged by; every default cites a source in SOURCES."""

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    js_warn: float = 0.1
    js_alert: float = 0.2
    wasserstein_warn: float = 0.1
    wasserstein_alert: float = 0.2
    chi_square_warn: float = 0.05
    chi_square_alert: float = 0.01
    integrity_warn: float = 0.01
    integrity_alert: float = 0.05
    performance_warn: float = 0.05
    performance_alert: float = 0.10
    parity_ratio: float = 0.8
    min_rows: int = 100
    min_labelled: int = 30
    min_group: int = 30
    confidence: float = 0.95
    resamples: int = 1000
    seed: int = 0


def iso_utc(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, to the microsecond when there is one."""
    text = moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
    return text + "Z"
