import pytest
from django.test import Client

from audit.models import LedgerEntry
from governance.rules import roles
from governance.models import Dataset, MLModel


def _login(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", [roles.DATA_SCIENTIST, roles.COMPLIANCE_OFFICER, roles.MODEL_RISK_VALIDATOR])
def test_admin_shows_only_the_users_units(role, unit, other_unit, make_user, make_credit_model_version):
    mine = make_credit_model_version(unit, name="mine-model")
    theirs = make_credit_model_version(other_unit, name="their-model")
    client = _login(make_user(role, [unit]))
    page = client.get("/admin/governance/modelversion/").content.decode()
    assert "mine-model@1.0" in page and "their-model" not in page
    for model in ("dataset", "datasetversion", "mlmodel", "trainingrun", "codeversion"):
        response = client.get(f"/admin/governance/{model}/")
        assert response.status_code == 200, model
    assert client.get(f"/admin/governance/modelversion/{mine.pk}/change/").status_code == 200
    # Another unit's object "does not exist" for this user: the admin redirects to its index.
    assert client.get(f"/admin/governance/modelversion/{theirs.pk}/change/").status_code == 302
    dv = theirs.training_run.inputs.get().dataset_version
    assert client.get(f"/admin/governance/datasetversion/{dv.pk}/change/").status_code == 302


@pytest.mark.parametrize(
    "model", ["dataset", "datasetversion", "mlmodel", "modelversion", "trainingrun"]
)
def test_list_filters_name_only_the_users_units(model, unit, other_unit, make_user, make_credit_model_version):
    """The business-unit filter in the sidebar must not name units the user may not see."""
    make_credit_model_version(unit, name="mine-model")
    make_credit_model_version(other_unit, name="their-model")
    client = _login(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    response = client.get(f"/admin/governance/{model}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert other_unit.name not in page and other_unit.slug not in page


def test_model_version_page_draws_its_lineage(unit, make_user, credit_model_version):
    client = _login(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    page = client.get(f"/admin/governance/modelversion/{credit_model_version.pk}/change/").content.decode()
    assert "<svg" in page and "Lineage: where this model came from" in page
    dv = credit_model_version.training_run.inputs.get().dataset_version
    assert f"datasetversion:{dv.pk}" in page and dv.sha256[:12] in page
    assert "credit-scoring@1.0" in page and "train-credit-scoring" in page
    # read-only: no save or delete buttons
    assert 'name="_save"' not in page and "/delete/" not in page


def test_dataset_version_page_draws_downstream(unit, make_user, credit_model_version):
    client = _login(make_user(roles.AUDITOR))
    dv = credit_model_version.training_run.inputs.get().dataset_version
    page = client.get(f"/admin/governance/datasetversion/{dv.pk}/change/").content.decode()
    assert "Downstream lineage" in page and f"modelversion:{credit_model_version.pk}" in page
    assert "wrapped_key" not in page
    assert "live, wrapped by master key" in page and "1000" in page


def test_admin_add_goes_through_the_service(unit, other_unit, make_user):
    scientist = make_user(roles.DATA_SCIENTIST, [unit])
    client = _login(scientist)
    response = client.post(
        "/admin/governance/mlmodel/add/",
        {"business_unit": unit.pk, "name": "m", "intended_purpose": "p", "risk_tier": "high", "annex_iii_category": "employment"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    model = MLModel.objects.get(name="m")
    assert LedgerEntry.objects.get(kind="registry.model_created").subject == model.ledger_subject
    # Another unit is not offered: the form refuses it.
    response = client.post("/admin/governance/dataset/add/", {"business_unit": other_unit.pk, "name": "d"})
    assert response.status_code == 200 and not Dataset.objects.exists()
    officer = _login(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    assert officer.get("/admin/governance/dataset/add/").status_code == 403


@pytest.mark.parametrize(
    "tier,category,message",
    [
        ("minimal", "employment", "Only high-risk models have an Annex III category."),
        ("high", "", "A high-risk model names its Annex III category"),
    ],
)
def test_admin_add_shows_the_classification_rule_on_the_form(tier, category, message, unit, make_user):
    """A category on a minimal-risk model was a 500 (the service refused after the form had
    passed); a high-risk model without one named a database constraint."""
    client = _login(make_user(roles.DATA_SCIENTIST, [unit]))
    client.raise_request_exception = False
    response = client.post(
        "/admin/governance/mlmodel/add/",
        {"business_unit": unit.pk, "name": "m", "intended_purpose": "p", "risk_tier": tier, "annex_iii_category": category},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in str(errors["annex_iii_category"]) and "Constraint" not in str(errors)
    assert not MLModel.objects.exists() and not LedgerEntry.objects.filter(kind="registry.model_created").exists()


def test_nothing_can_be_deleted(unit, make_user, credit_model_version):
    client = _login(make_user(None, superuser=True))
    assert client.get(f"/admin/governance/modelversion/{credit_model_version.pk}/delete/").status_code in (403, 302)
    assert client.post(f"/admin/governance/modelversion/{credit_model_version.pk}/change/", {"version": "x"}).status_code == 403


def test_a_models_page_links_its_versions_releases_and_gate_runs(unit, make_user, credit_model_version):
    from governance.services.releases import release_request
    from tests.gate_verdicts import record_gate_verdict

    release = record_gate_verdict(release_request(model_version=credit_model_version, environment="staging",
                                                  actor=make_user(roles.DATA_SCIENTIST, [unit])), "passed")
    client = _login(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    model = credit_model_version.model
    page = client.get(f"/admin/governance/mlmodel/{model.pk}/change/").content.decode()
    assert f'href="/admin/governance/modelversion/{credit_model_version.pk}/change/">v1.0</a>' in page
    assert f'href="/admin/governance/releaserequest/{release.pk}/review/">Release #{release.pk}: v1.0 → staging</a>' in page
    assert f'href="/admin/governance/gaterun/{release.gate_run_id}/change/">Gate run #{release.gate_run_id} of' in page
    version_page = client.get(f"/admin/governance/modelversion/{credit_model_version.pk}/change/").content.decode()
    assert f"/admin/governance/releaserequest/{release.pk}/review/" in version_page


def test_lineage_boxes_link_to_their_records(unit, make_user, credit_model_version):
    client = _login(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    page = client.get(f"/admin/governance/modelversion/{credit_model_version.pk}/change/").content.decode()
    run = credit_model_version.training_run
    dv = run.inputs.get().dataset_version
    for url in (f"/admin/governance/trainingrun/{run.pk}/change/", f"/admin/governance/datasetversion/{dv.pk}/change/",
                f"/admin/governance/codeversion/{run.code_version_id}/change/"):
        assert f'<a href="{url}" class="lineage-node">' in page, url


def test_history_is_the_ledger_entries_about_the_record(unit, make_user, credit_model_version):
    from audit.services import checkpoint_create

    checkpoint_create()
    client = _login(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    page = client.get(f"/admin/governance/modelversion/{credit_model_version.pk}/history/").content.decode()
    entries = LedgerEntry.objects.filter(subject=credit_model_version.ledger_subject)
    assert entries.exists()
    for e in entries:
        assert f'href="/admin/audit/ledgerentry/{e.seq}/change/">#{e.seq}</a>' in page
    assert 'data-included="yes"' in page and "included in the signed checkpoint" in page


def test_an_auditor_exports_everything_about_a_version_and_it_verifies_offline(unit, make_user, credit_model_version,
                                                                               tmp_path):
    import subprocess
    import sys

    from audit.keys import signing_key

    auditor = _login(make_user(roles.AUDITOR))
    post = {"action": "export_evidence_bundle", "_selected_action": [credit_model_version.pk]}
    response = auditor.post("/admin/governance/modelversion/", post)
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    bundle = response.json()
    run = credit_model_version.training_run
    assert {credit_model_version.ledger_subject, run.ledger_subject,
            credit_model_version.model.ledger_subject} <= set(bundle["subjects"])
    path = tmp_path / "bundle.json"
    path.write_bytes(response.content)
    done = subprocess.run([sys.executable, "-m", "audit.verifier", str(path), "--key", signing_key().verifier_key],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    officer = _login(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    assert "export_evidence_bundle" not in officer.get("/admin/governance/modelversion/").content.decode()


def test_schema_parameters_and_metrics_are_tables_not_json(unit, make_user, credit_model_version):
    client = _login(make_user(roles.COMPLIANCE_OFFICER, [unit]))
    run = credit_model_version.training_run
    page = client.get(f"/admin/governance/trainingrun/{run.pk}/change/").content.decode()
    name, value = next(iter(run.metrics.items()))
    assert f"<tr><th>{name}</th><td>{value:.6g}</td></tr>" in page
    assert f"<tr><th>{next(iter(run.parameters))}</th>" in page
    dv = run.inputs.get().dataset_version
    page = client.get(f"/admin/governance/datasetversion/{dv.pk}/change/").content.decode()
    column = dv.schema[0]
    assert "<thead><tr><th>name</th><th>type</th>" in page and f"<td>{column['name']}</td>" in page
    assert "[{&quot;name&quot;" not in page  # no JSON dump of the schema
