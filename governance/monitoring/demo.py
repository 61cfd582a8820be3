"""The monitoring demo step: eight weekly windows of the demo's production release, with the
applicants' credit amounts shifting from week six, the labels of the first five weeks, every
window closed and signed, and the alerts open as findings (``make run`` shows them).

Production rows are resampled from the German credit data (seeded), scored by the released
model, sent as CSV batches through the same service a pipeline calls; nothing of them is kept.
"""

import io
from datetime import UTC, timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from governance.demo import credit
from governance.storage import artifacts

from .models import MonitoringPlan
from .services import batch_ingest, labels_record, plan_version_publish, windows_close

WEEKS = 8
SHIFT_FROM_WEEK = 6  # 1-based: the sixth window is the first with the shift
SHIFT = 1.6
ROWS_PER_WEEK = 500
LABELLED_WEEKS = 5


def _week_rows(model, frame, week: int, start):
    rng = np.random.default_rng(1000 + week)
    rows = frame.iloc[rng.integers(0, len(frame), ROWS_PER_WEEK)].reset_index(drop=True)
    labels = rows[credit.LABEL].to_numpy()
    rows = rows.drop(columns=[credit.LABEL, credit.SUBJECT_COLUMN])
    if week + 1 >= SHIFT_FROM_WEEK:
        rows["credit_amount"] = (rows["credit_amount"] * SHIFT).round().astype(int)
    features = list(getattr(model, "feature_names_in_", rows.columns))
    rows["score"] = model.predict_proba(rows[features])[:, 1]
    step = timedelta(days=7) / ROWS_PER_WEEK
    rows["timestamp"] = [(start + i * step).isoformat() for i in range(ROWS_PER_WEEK)]
    rows["prediction_id"] = [f"demo-w{week + 1}-{i:05d}" for i in range(ROWS_PER_WEEK)]
    return rows, dict(zip(rows["prediction_id"], (int(x) for x in labels)))


def monitoring(out):
    plan = MonitoringPlan.objects.filter(release__environment="production", release__state="approved",
                                         status=MonitoringPlan.Status.ACTIVE).order_by("pk").first()
    if plan is None:
        out("  monitoring: skipped (no approved production release with a monitoring plan)")
        return
    if plan.windows.exists():
        out(f"  monitoring: plan {plan.pk} has windows")
        return
    pipeline = get_user_model().objects.get(username="pipeline.credit")
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    origin = today - WEEKS * timedelta(days=7)
    plan_version_publish(plan=plan, changes={"origin": origin.isoformat(),
                                             "notes": "Demo: eight weekly windows before today."}, actor=None)
    model = artifacts.load_model(plan.model_version)
    frame = credit.german_credit_frame()
    labels = {}
    for week in range(WEEKS):
        start = origin + week * timedelta(days=7)
        rows, truth = _week_rows(model, frame, week, start)
        data = io.BytesIO(rows.to_csv(index=False).encode())
        batch_ingest(plan=plan, source=data, file_format="csv", actor=pipeline, now=start + timedelta(days=1))
        if week < LABELLED_WEEKS:
            labels.update(truth)
    windows_close(now=today)
    labels_record(plan=plan, labels=labels, actor=pipeline)
    windows = windows_close(now=today)
    verdicts = [w.verdict for w in plan.windows.order_by("start")]
    findings = plan.findings.count()
    out(f"  monitoring: plan {plan.pk} of {plan.model_version}: {WEEKS} weekly windows ({', '.join(verdicts)}); "
        f"credit_amount x{SHIFT} from week {SHIFT_FROM_WEEK}; {len(windows)} re-evaluated with labels; "
        f"{findings} open finding(s)")
