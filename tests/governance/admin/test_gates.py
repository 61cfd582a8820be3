import xml.etree.ElementTree as ET

import pytest
from django.test import Client

from governance.rules import roles
from governance.demo.credit import credit_policy_document
from governance.gates.policy import policy_digest
from governance.models import GatePolicy
from governance.services.gates import gate_run_submit


def _client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def failed_run(unit, gate_policy, german_credit_version, make_gate_model_version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = gate_run_submit(model_version=make_gate_model_version(unit, "skewed"),
                              dataset_version=german_credit_version, label_column="risk", positive_label="1",
                              policy=gate_policy, seed=9)
    run.refresh_from_db()
    assert run.status == "failed"
    return run


def test_run_page_shows_checks_and_svg_charts(make_user, unit, other_unit, failed_run):
    officer = _client(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    page = officer.get(f"/admin/governance/gaterun/{failed_run.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "demographic_parity_ratio by sex" in html
    ours = '<svg xmlns="http://www.w3.org/2000/svg" width='
    assert html.count(ours) >= 5  # SHAP importance + 4 by-group metrics for sex
    start = html.index(ours)
    first = html[start: html.index("</svg>", start) + 6]
    ET.fromstring(first)  # well-formed SVG inline
    outsider = _client(make_user(roles.COMPLIANCE_OFFICER, [other_unit]))
    assert outsider.get(f"/admin/governance/gaterun/{failed_run.pk}/change/").status_code in (302, 404)


def test_run_page_shows_tables_not_raw_json_and_offers_the_result_as_a_download(make_user, unit, failed_run):
    officer = _client(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    html = officer.get(f"/admin/governance/gaterun/{failed_run.pk}/change/").content.decode()
    result = failed_run.result
    raw = result["explainability"]["raw_values"][0][0]
    assert repr(raw) not in html and '"raw_values"' not in html  # no per-row SHAP dump
    assert len(html) < 200_000
    for table in ('id="checks"', 'id="performance"', 'id="shap-importance"'):
        assert table in html, table
    assert "95% interval" in html and "selection rate" in html
    checks = result["checks"]
    not_applicable = [c for c in checks if c["verdict"] == "not_applicable"]
    assert not_applicable, "the first run of a model has nothing to compare with"
    passed = sum(c["verdict"] == "passed" for c in checks)
    assert f"{passed} passed" in html and f"{len(not_applicable)} not applicable" in html
    assert html.count('data-verdict="not_applicable"') >= len(not_applicable)  # worded as such, not as passed
    assert ">Not applicable<" in html and ">Failed<" in html
    download = officer.get(f"/admin/governance/gaterun/{failed_run.pk}/result.json")
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    assert download.json() == result
    listing = officer.get("/admin/governance/gaterun/").content.decode()
    assert f"Gate run #{failed_run.pk} of " in listing and "not applicable" in listing


def test_run_list_is_restricted_to_units(make_user, unit, other_unit, failed_run):
    outsider = _client(make_user(roles.COMPLIANCE_OFFICER, [other_unit]))
    page = outsider.get("/admin/governance/gaterun/")
    assert page.status_code == 200
    assert f"/admin/governance/gaterun/{failed_run.pk}/change/" not in page.content.decode()
    insider = _client(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    assert f"/admin/governance/gaterun/{failed_run.pk}/change/" in insider.get("/admin/governance/gaterun/").content.decode()


def test_editing_a_policy_publishes_a_new_version(make_user, gate_policy):
    officer = _client(make_user(roles.HEAD_OF_MODEL_RISK))
    form = officer.get(f"/admin/governance/gatepolicy/add/?from={gate_policy.pk}")
    assert form.status_code == 200 and "retail-credit" in form.content.decode()
    document = credit_policy_document(explained_rows=100)
    document["fairness"]["min_group_size"] = 40
    import json

    response = officer.post("/admin/governance/gatepolicy/add/", {"name": "retail-credit",
                                                                   "document": json.dumps(document)})
    assert response.status_code == 302, response.content.decode()[:2000]
    latest = GatePolicy.objects.filter(name="retail-credit").order_by("-version").first()
    assert latest.version == 2 and latest.digest == policy_digest(document)
    gate_policy.refresh_from_db()
    assert gate_policy.document["fairness"]["min_group_size"] == 30  # version 1 is untouched
    same = officer.post("/admin/governance/gatepolicy/add/", {"name": "retail-credit",
                                                               "document": json.dumps(document)})
    assert same.status_code == 200 and "identical" in same.content.decode()
    invalid = officer.post("/admin/governance/gatepolicy/add/", {"name": "retail-credit",
                                                                  "document": json.dumps({"schema": "x"})})
    assert invalid.status_code == 200 and "schema" in invalid.content.decode()
    assert GatePolicy.objects.filter(name="retail-credit").count() == 2
    for role in (roles.DATA_SCIENTIST, roles.COMPLIANCE_OFFICER):  # organisation-wide authority only
        assert _client(make_user(role)).get("/admin/governance/gatepolicy/add/").status_code == 403


def test_model_overrides_of_another_unit_are_not_listed(make_user, unit, other_unit, gate_policy,
                                                        make_gate_model_version):
    from governance.services.gates import gate_policy_assign

    model = make_gate_model_version(unit).model
    override = gate_policy_assign(policy_name=gate_policy.name, model=model)
    tier = gate_policy_assign(policy_name=gate_policy.name, risk_tier="high")
    outsider = _client(make_user(roles.COMPLIANCE_OFFICER, [other_unit]))
    listing = outsider.get("/admin/governance/gatepolicyassignment/").content.decode()
    assert model.name not in listing  # another unit's model name
    assert f"/admin/governance/gatepolicyassignment/{tier.pk}/change/" in listing
    assert outsider.get(f"/admin/governance/gatepolicyassignment/{override.pk}/change/").status_code in (302, 404)
    insider = _client(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    assert model.name in insider.get("/admin/governance/gatepolicyassignment/").content.decode()


def test_policy_document_is_shown_indented_for_editing(make_user, gate_policy):
    import json

    officer = _client(make_user(roles.HEAD_OF_MODEL_RISK))
    page = officer.get(f"/admin/governance/gatepolicy/add/?from={gate_policy.pk}")
    shown = page.context["adminform"].form["document"].value()
    assert json.loads(shown) == gate_policy.document and shown.startswith('{\n  "')
    assert "\n  &quot;fairness&quot;: {" in page.content.decode()
    # what an officer typed wrongly comes back as typed, with the error
    bad = officer.post("/admin/governance/gatepolicy/add/", {"name": "retail-credit", "document": "{not json"})
    assert bad.status_code == 200 and "{not json" in bad.content.decode()
    ratio = {**gate_policy.document, "fairness": {**gate_policy.document["fairness"],
                                                  "metrics": {"demographic_parity_ratio": {"min": 1.5}}}}
    refused = officer.post("/admin/governance/gatepolicy/add/", {"name": "retail-credit", "document": json.dumps(ratio)})
    assert refused.status_code == 200 and "demographic_parity_ratio/min" in refused.content.decode()
    assert GatePolicy.objects.filter(name="retail-credit").count() == 1


def test_reverify_action_says_why_a_run_was_not_reverified(make_user, unit, gate_policy, german_credit_version,
                                                           make_gate_model_version, failed_run,
                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        errored = gate_run_submit(model_version=make_gate_model_version(unit), dataset_version=german_credit_version,
                                  label_column="risk", positive_label="yes", policy=gate_policy, seed=3)
    errored.refresh_from_db()
    assert errored.status == "error"
    auditor = _client(make_user(roles.AUDITOR))
    with django_capture_on_commit_callbacks(execute=True):  # the re-verification runs on a worker, after commit
        page = auditor.post("/admin/governance/gaterun/",
                            {"action": "reverify", "_selected_action": [failed_run.pk, errored.pk]}, follow=True)
    shown = [str(m) for m in page.context["messages"]]
    assert f"Run {failed_run.pk}: re-verification queued; its result appears on the run's page." in shown
    assert f"Run {errored.pk}: Gate run {errored.pk} has no result to re-verify (error)." in shown
    (check,) = failed_run.reverifications.all()
    assert check.status == "reproduced" and check.requested_by.username.startswith("auditor")
