"""Monitoring in the admin: the plan page's tables and charts, a window's statistics, triage
through the services, the attention panel."""

import io
from datetime import timedelta

import pytest
from django.test import Client

from governance.monitoring.models import Finding, Incident
from governance.monitoring.services import batch_ingest, windows_close
from governance.rules.releases import State

from .conftest import PLAN_ORIGIN, scored_rows

WEEK = timedelta(days=7)


def browser_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def drifted_plan(production_plan, monitoring_people):
    for week, shift in ((0, 1.0), (1, 1.8)):
        rows, _ = scored_rows(production_plan.model_version, 400, start=PLAN_ORIGIN + week * WEEK, seed=week,
                              shift=shift, step=timedelta(minutes=20))
        batch_ingest(plan=production_plan, source=io.BytesIO(rows.to_csv(index=False).encode()), file_format="csv",
                     actor=monitoring_people["pipeline"], now=PLAN_ORIGIN + week * WEEK + timedelta(days=1))
    windows_close(now=PLAN_ORIGIN + 2 * WEEK)
    return production_plan


def test_plan_page_has_tables_and_charts(drifted_plan, monitoring_people):
    page = browser_for(monitoring_people["validator"]).get(f"/admin/monitoring/monitoringplan/{drifted_plan.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="windows"' in html and 'id="findings"' in html and "Policy versions" in html
    assert "PSI of credit_amount by window" in html and "Drift verdicts: columns × windows" in html
    assert "demographic parity ratio by sex" in html and "<svg" in html
    window = drifted_plan.windows.order_by("start").last()
    page = browser_for(monitoring_people["validator"]).get(f"/admin/monitoring/monitoringwindow/{window.pk}/change/")
    html = page.content.decode()
    for area in ("drift", "integrity", "performance", "fairness"):
        assert f'id="area-{area}"' in html
    assert "alert" in html and window.evaluation_digest in html


def test_another_units_plan_is_refused(drifted_plan, make_user, other_unit):
    from governance.rules import roles

    outsider = browser_for(make_user(roles.MODEL_RISK_VALIDATOR, [other_unit]))
    assert outsider.get(f"/admin/monitoring/monitoringplan/{drifted_plan.pk}/change/").status_code == 403
    assert str(drifted_plan.model_version) not in outsider.get("/admin/monitoring/monitoringplan/").content.decode()


def test_triage_in_the_admin_and_the_attention_panel(drifted_plan, monitoring_people, make_user):
    validator, officer = browser_for(monitoring_people["validator"]), browser_for(monitoring_people["officer"])
    findings = list(Finding.objects.filter(plan=drifted_plan).order_by("pk"))
    assert len(findings) >= 2
    index = officer.get("/admin/").content.decode()
    assert "Monitoring: open findings and incidents" in index and f"Finding {findings[0].pk}" in index
    url = f"/admin/monitoring/finding/{findings[0].pk}/change/"
    validator.post(url, {"action": "dismiss", "dismiss-justification": "Seasonal: the spring campaign."})
    findings[0].refresh_from_db()
    assert findings[0].state == Finding.State.DISMISSED
    url = f"/admin/monitoring/finding/{findings[1].pk}/change/"
    validator.post(url, {"action": "incident", "incident-category": "serious",
                         "incident-aware_at": "2024-01-16T09:00:00Z",
                         "incident-description": "Amounts doubled; scores no longer reliable."})
    incident = Incident.objects.get(finding=findings[1])
    assert incident.deadline.isoformat().startswith("2024-01-31T09:00")
    assert "due 2024-01-31" in officer.get("/admin/").content.decode()
    validator.post(url, {"action": "request", "request-justification": "The model no longer fits the applicants."})
    page = officer.post(url, {"action": "revoke", "revoke-justification": "The model no longer fits the applicants."})
    assert "cannot be undone" in page.content.decode() and 'id="revoke-confirm"' in page.content.decode()  # asked once more: nothing happened yet
    drifted_plan.release.refresh_from_db()
    assert drifted_plan.release.state == State.APPROVED
    officer.post(url, {"action": "revoke", "revoke-justification": "The model no longer fits the applicants.",
                       "confirmed": "yes"})
    drifted_plan.release.refresh_from_db()
    assert drifted_plan.release.state == State.REVOKED
    # An auditor reads every unit, and is offered no form.
    from governance.rules import roles

    auditor = browser_for(make_user(roles.AUDITOR))
    page = auditor.get(f"/admin/monitoring/finding/{findings[-1].pk}/change/")
    assert page.status_code == 200 and '<form method="post"' not in page.content.decode()


def test_a_validator_publishes_a_plan_version_in_the_admin(production_plan, monitoring_people):
    url = f"/admin/monitoring/monitoringplan/{production_plan.pk}/change/"
    validator = browser_for(monitoring_people["validator"])
    assert 'id="new-version"' in validator.get(url).content.decode()
    from governance.monitoring.admin import PlanVersionForm
    from governance.monitoring.services import plan_version_current

    data = PlanVersionForm.initial_of(plan_version_current(production_plan).policy)
    data.update(psi_warn=0.15, window_days=14)
    validator.post(url, data)
    current = plan_version_current(production_plan)
    assert current.version == 3 and current.policy["limits"]["psi_warn"] == 0.15 and current.policy["window_days"] == 14
    data.update(psi_warn=0.5)  # above its alert limit: refused, no version
    page = validator.post(url, data, follow=True)
    assert plan_version_current(production_plan).version == 3 and "at most its alert limit" in page.content.decode()
    pipeline = browser_for(monitoring_people["officer"])  # an officer reads plans, does not change them
    assert 'id="new-version"' not in pipeline.get(url).content.decode()
    assert pipeline.post(url, data).status_code == 403
