"""Ledger readers of one business unit read the entries about their unit's records, and no others."""

import pytest
from django.apps import apps
from rest_framework.test import APIClient

from audit.models import LedgerEntry
from governance.rules import roles
from governance.models import BusinessUnit, GatePolicyAssignment
from governance.selectors.ledger import scope_entries
from governance.services.access import business_unit_grant, user_roles_set
from governance.services.gates import gate_policy_assign, gate_run_submit
from governance.services.releases import release_request

API = "/api/v1/ledger/entries"


@pytest.fixture
def ledger(unit, other_unit, make_user, gate_policy, german_credit_version, make_gate_model_version,
           make_credit_model_version):
    """Records of every kind in two units, and entries about people and shared policies."""
    gate_policy_assign(policy_name=gate_policy.name, risk_tier="high")  # a tier-wide assignment: shared
    for u in (unit, other_unit):
        make_credit_model_version(u, name=f"credit-{u.slug}")
        business_unit_grant(unit=u, user=make_user(roles.DATA_SCIENTIST), actor=None)  # entries about the unit
    mv = make_gate_model_version(unit, "fair")
    gate_run_submit(model_version=mv, dataset_version=german_credit_version, label_column="risk",
                    positive_label="1", policy=gate_policy, seed=1)
    release_request(model_version=mv, environment="production", actor=make_user(roles.DATA_SCIENTIST, [unit]))
    user_roles_set(user=make_user(), roles=[roles.AUDITOR], actor=None)  # an entry about a person
    return unit, other_unit


def oracle(entry, user_units):
    """May a reader of USER_UNITS read ENTRY? Decided from the records themselves, in Python."""
    label, _, pk = entry.subject.partition(":")
    if label in ("governance.gatepolicy", "governance.approvalpolicy", "audit.key"):
        return True
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return False
    record = model.objects.get(pk=pk)
    if isinstance(record, BusinessUnit):
        unit = record
    elif isinstance(record, GatePolicyAssignment):
        if record.model is None:
            return True
        unit = record.model.business_unit
    elif hasattr(record, "dataset_version") and not hasattr(record, "business_unit"):  # the snapshot key
        unit = record.dataset_version.business_unit
    elif hasattr(record, "model") and not hasattr(record, "business_unit"):  # a release request
        unit = record.model.business_unit
    else:
        unit = getattr(record, "business_unit", None)
    return unit is not None and unit.pk in user_units


def test_a_unit_reader_reads_exactly_the_entries_about_its_units(ledger, make_user):
    unit, other_unit = ledger
    officer = make_user(roles.COMPLIANCE_OFFICER, [unit])
    visible = set(scope_entries(LedgerEntry.objects.all(), officer).values_list("seq", flat=True))
    expected = {e.seq for e in LedgerEntry.objects.all() if oracle(e, {unit.pk})}
    assert visible == expected
    labels = {s.split(":")[0] for s in LedgerEntry.objects.filter(seq__in=visible).values_list("subject", flat=True)}
    # the test covers every kind of record in the unit, and shares keys and policies
    assert {"governance.modelversion", "governance.datasetversion", "governance.gaterun",
            "governance.releaserequest", "governance.businessunit", "audit.key"} <= labels
    hidden = LedgerEntry.objects.exclude(seq__in=visible)
    assert hidden.filter(subject__startswith="auth.user:").exists()  # people stay with the global readers
    assert hidden.filter(subject=other_unit.ledger_subject).exists()


def test_the_api_and_the_admin_apply_the_scope(ledger, make_user, client):
    unit, other_unit = ledger
    theirs = LedgerEntry.objects.filter(subject=other_unit.ledger_subject).first()
    ours = LedgerEntry.objects.filter(subject=unit.ledger_subject).first()
    officer = make_user(roles.COMPLIANCE_OFFICER, [unit])
    api = APIClient()
    api.force_authenticate(officer)
    listed = {e["seq"] for e in api.get(API, {"page_size": 500}).json()["results"]}
    assert ours.seq in listed and theirs.seq not in listed
    assert api.get(f"{API}/{theirs.seq}").status_code == 404
    assert api.get(f"{API}/{ours.seq}").status_code == 200
    assert api.get(API, {"subject": other_unit.ledger_subject}).json()["results"] == []

    api.force_authenticate(make_user(roles.AUDITOR))  # a global reader reads all
    assert api.get(f"{API}/{theirs.seq}").status_code == 200

    client.force_login(officer)
    page = client.get("/admin/audit/ledgerentry/", {"q": other_unit.ledger_subject})
    assert page.status_code == 200 and f"/admin/audit/ledgerentry/{theirs.seq}/change/" not in page.content.decode()
    page = client.get("/admin/audit/ledgerentry/", {"q": unit.ledger_subject})
    assert f"/admin/audit/ledgerentry/{ours.seq}/change/" in page.content.decode()
    assert client.get(f"/admin/audit/ledgerentry/{theirs.seq}/change/").status_code == 302  # "does not exist"
    assert client.get(f"/admin/audit/ledgerentry/{ours.seq}/change/").status_code == 200


def test_an_inactive_or_anonymous_user_reads_nothing(ledger, make_user):
    from django.contrib.auth.models import AnonymousUser

    gone = make_user(roles.COMPLIANCE_OFFICER, [ledger[0]])
    gone.is_active = False
    assert not scope_entries(LedgerEntry.objects.all(), gone).exists()
    assert not scope_entries(LedgerEntry.objects.all(), AnonymousUser()).exists()


# --- "everything about" a model version, for evidence bundles --------------------------------


@pytest.fixture
def released_version(credit_model_version, make_user, unit):
    from tests.gate_verdicts import record_gate_verdict

    release = release_request(model_version=credit_model_version, environment="staging",
                              actor=make_user(roles.DATA_SCIENTIST, [unit]))
    return record_gate_verdict(release, "passed")


def test_everything_about_a_model_version(released_version):
    from governance.selectors.ledger import related_subjects

    mv = released_version.model_version
    run = mv.training_run
    dv = run.inputs.get().dataset_version
    gate = released_version.gate_run
    expected = {mv.ledger_subject, mv.model.ledger_subject, run.ledger_subject, run.code_version.ledger_subject,
                dv.ledger_subject, dv.dataset.ledger_subject, gate.ledger_subject, gate.dataset_version.ledger_subject, gate.dataset_version.dataset.ledger_subject,
                gate.policy.ledger_subject, released_version.ledger_subject,
                released_version.approval_policy.ledger_subject}
    assert set(related_subjects(mv.ledger_subject)) == expected
    assert set(related_subjects(released_version.ledger_subject)) == expected  # a release's bundle has its gate run
    assert related_subjects("governance.businessunit:1") == ["governance.businessunit:1"]


def test_ledger_export_related_verifies_offline(released_version, tmp_path):
    import subprocess
    import sys
    from django.core.management import call_command

    from audit.keys import signing_key

    out = tmp_path / "bundle.json"
    call_command("ledger", "export", "--out", str(out), "--subject", released_version.ledger_subject, "--related")
    import json

    bundle = json.loads(out.read_text())
    assert released_version.gate_run.ledger_subject in bundle["subjects"]
    assert len(bundle["entries"]) > 10
    done = subprocess.run([sys.executable, "-m", "audit.verifier", str(out), "--key", signing_key().verifier_key],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
