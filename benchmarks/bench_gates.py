"""Release-gate evaluation: Custos's evaluate() next to the bare library calls that compute
the same figures, on a 100,000-row evaluation set with a gradient-boosting model; and a
1,000,000-row run's peak memory.

The evaluation sets are the German credit rows resampled with replacement (numeric columns
jittered), so groups and label rates stay realistic. No database: this measures the
computation a gate run's task performs after loading its artifact and snapshot.

Run: ``python -m benchmarks bench_gates`` (about two minutes on 2 cores).
"""

import multiprocessing
import resource
import time

import numpy as np

ROWS = 100_000
BIG_ROWS = 1_000_000
SEED = 20260101


def _frame(rows, seed):
    from governance.demo.credit import german_credit_frame

    base = german_credit_frame().drop(columns=["applicant_id"])
    rng = np.random.default_rng(seed)
    df = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    for col, scale in (("credit_amount", 200.0), ("duration", 2.0), ("age", 1.0)):
        df[col] = np.maximum(1, df[col] + rng.normal(0, scale, rows)).round().astype(int)
    return df


def _policy():
    from governance.demo.credit import credit_policy_document

    return credit_policy_document(explained_rows=500, background_rows=100)


def _bare(model, df, policy, *, lean=False):
    """The same figures by calling scikit-learn, fairlearn and shap directly. LEAN takes the
    disparities from the one MetricFrame instead of fairlearn's four convenience functions."""
    import shap
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        demographic_parity_ratio,
        equal_opportunity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    from governance.demo.credit import CATEGORICAL, NUMERIC

    CATEGORICAL = [c for c in CATEGORICAL if c != "sex"]  # the fair model leaves `sex` out

    x = df[CATEGORICAL + NUMERIC]
    y = df["risk"].to_numpy() == 1
    proba = model.predict_proba(x)[:, 1]
    pred = proba > 0.5
    perf = (accuracy_score(y, pred), roc_auc_score(y, proba), f1_score(y, pred))
    sex = df["sex"]
    frame = MetricFrame(
        metrics={"count": count, "selection_rate": selection_rate, "tpr": true_positive_rate,
                 "fpr": false_positive_rate, "accuracy": accuracy_score},
        y_true=y, y_pred=pred, sensitive_features=sex,
    )
    if lean:
        diff, ratio = frame.difference(), frame.ratio()
        disparities = (diff["selection_rate"], ratio["selection_rate"], max(diff["tpr"], diff["fpr"]), diff["tpr"])
    else:
        disparities = (
            demographic_parity_difference(y, pred, sensitive_features=sex),
            demographic_parity_ratio(y, pred, sensitive_features=sex),
            equalized_odds_difference(y, pred, sensitive_features=sex),
            equal_opportunity_difference(y, pred, sensitive_features=sex),
        )
    rng = np.random.default_rng(SEED)
    rules = policy["explainability"]
    background = np.sort(rng.choice(len(df), rules["background_rows"], replace=False))
    explained = np.sort(rng.choice(len(df), rules["explained_rows"], replace=False))
    prep, gbm = model.named_steps["prep"], model.named_steps["model"]
    explainer = shap.TreeExplainer(gbm, data=prep.transform(x.iloc[background]),
                                   feature_perturbation="interventional")
    values = explainer.shap_values(prep.transform(x.iloc[explained]))
    return perf, frame.by_group, disparities, np.abs(values).mean(axis=0)


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def _big_run(queue):
    """In a fresh process: peak RSS of a 1,000,000-row gate evaluation."""
    from django import setup

    setup()
    from governance.demo.credit import german_credit_frame
    from governance.gates.evaluate import evaluate
    from governance.demo.credit import train_fair_model

    model = train_fair_model(german_credit_frame(), seed=0)
    df = _frame(BIG_ROWS, SEED + 1)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frame_mb = df.memory_usage(deep=True).sum() / 2**20
    seconds, result = _timed(evaluate, model, df, label_column="risk", positive_label=1, policy=_policy(),
                             seed=SEED)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((seconds, frame_mb, rss_data, peak, result["verdict"], result["explainability"]["explained_count"]))


def main():
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    from django import setup

    setup()
    from governance.demo.credit import german_credit_frame
    from governance.gates.evaluate import evaluate
    from governance.demo.credit import train_fair_model

    model = train_fair_model(german_credit_frame(), seed=0)
    df = _frame(ROWS, SEED)
    policy = _policy()
    evaluate(model, df.head(2000), label_column="risk", positive_label=1, policy=policy, seed=SEED)  # warm-up
    custos, bare, lean = [], [], []
    for _ in range(2):
        t, result = _timed(evaluate, model, df, label_column="risk", positive_label=1, policy=policy, seed=SEED)
        custos.append(t)
        bare.append(_timed(_bare, model, df, policy)[0])
        lean.append(_timed(_bare, model, df, policy, lean=True)[0])
    c, b, bl = min(custos), min(bare), min(lean)
    resamples = policy["fairness"]["bootstrap"]["resamples"]
    print(f"gate evaluation, {ROWS:,} rows, GradientBoosting(100 trees), SHAP on 500 rows x 100 background, "
          f"{resamples} bootstrap resamples")
    print(f"  custos evaluate():            {c:7.2f} s  (verdict {result['verdict']})")
    print(f"  bare sklearn+fairlearn+shap:  {b:7.2f} s  (no bootstrap, no judgement)")
    print(f"  bare, one MetricFrame:        {bl:7.2f} s  (disparities from MetricFrame.difference/ratio)")
    print(f"  ratio custos / bare:          {c / b:7.2f}x ; custos / bare one-MetricFrame: {c / bl:.2f}x "
          "(target <= 1.3x)")

    # The bootstrap alone: Custos's multinomial cell resampling vs fairlearn's row resampling.
    from fairlearn.metrics import MetricFrame, selection_rate

    from governance.gates.fairness import fairness_figures

    y = df["risk"].to_numpy() == 1
    pred = model.predict(df[model.feature_names_in_]) == 1
    t_ours, _ = _timed(fairness_figures, df, y, pred, features=[{"column": "sex"}], intersections=[],
                       resamples=resamples, confidence=0.95, seed=SEED)
    n_boot = 20
    t_fl, _ = _timed(MetricFrame, metrics={"sr": selection_rate}, y_true=y, y_pred=pred,
                     sensitive_features=df["sex"], n_boot=n_boot, ci_quantiles=[0.025, 0.975], random_state=SEED)
    per_ours, per_fl = t_ours / resamples, t_fl / n_boot
    print(f"  bootstrap per resample: custos {per_ours * 1e3:.3f} ms (all 4 disparities) vs fairlearn "
          f"MetricFrame(n_boot) {per_fl * 1e3:.1f} ms (selection rate only): {per_fl / per_ours:,.0f}x faster")

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_big_run, args=(queue,))
    proc.start()
    seconds, frame_mb, rss_data, peak, verdict, explained = queue.get()
    proc.join()
    print(f"gate evaluation, {BIG_ROWS:,} rows: {seconds:.1f} s, verdict {verdict}, SHAP on {explained} sampled rows")
    print(f"  data frame {frame_mb:.0f} MiB; RSS with data loaded {rss_data:.0f} MiB; peak RSS {peak:.0f} MiB "
          f"(+{peak - rss_data:.0f} MiB for the evaluation)")
