"""The compliance officer's admin: attention page, review page, decisions through the services."""

import pytest
from django.test import Client

from audit.models import LedgerEntry
from governance.rules import roles
from governance.models import Approval
from governance.rules.releases import State
from governance.services.releases import release_decide, release_request
from tests.gate_verdicts import record_gate_verdict

CO, MRV, DS, AUD = roles.COMPLIANCE_OFFICER, roles.MODEL_RISK_VALIDATOR, roles.DATA_SCIENTIST, roles.AUDITOR
WHY = "Reviewed the gate evidence and the lineage."


def browser_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def requester(make_user, unit):
    return make_user(DS, [unit])


@pytest.fixture
def release(credit_model_version, requester):
    r = release_request(model_version=credit_model_version, environment="production", actor=requester)
    return record_gate_verdict(r, "passed")


def review_url(release):
    return f"/admin/governance/releaserequest/{release.pk}/review/"


def decide_url(release, decision):
    """The confirmation page of DECISION: GET says what follows, POST records it."""
    return f"/admin/governance/releaserequest/{release.pk}/{decision}/"


def offers(page, decision):
    return f'/{decision}/" id="{decision}"' in page


def test_officer_sees_what_needs_attention(make_user, unit, release):
    officer = browser_for(make_user(CO, [unit]))
    index = officer.get("/admin/")
    assert "Needs your attention" in index.content.decode()
    assert "1 release request awaiting your decision" in " ".join(index.content.decode().split())
    page = officer.get("/admin/governance/releaserequest/attention/")
    assert page.status_code == 200
    assert f"#{release.pk}" in page.content.decode()


def test_review_page_shows_lineage_gates_and_forms(make_user, unit, release):
    page = browser_for(make_user(MRV, [unit])).get(review_url(release)).content.decode()
    # The lineage picture itself (the admin's theme icons are SVGs too): the graph of this model
    # version, its training run and the snapshot it was trained on, each a box.
    mv = release.model_version
    run = mv.training_run
    (dataset_version,) = [i.dataset_version for i in run.inputs.all()]
    lineage = page.split('<div class="lineage">', 1)[1].split("</div>", 1)[0]
    assert lineage.startswith("<svg") and 'aria-label="Lineage graph"' in lineage
    for node in (f"modelversion:{mv.pk}", f"trainingrun:{run.pk}", f"datasetversion:{dataset_version.pk}"):
        assert f"<title>{node} " in lineage, node
    assert lineage.count("<rect") == 4  # and the code version: nothing else, nothing missing
    assert "Gate results" in page and "demographic_parity_ratio" in page
    assert f'href="/admin/governance/gaterun/{release.gate_run_id}/change/"' in page
    assert offers(page, "approve") and offers(page, "reject")
    assert release.model_version.artifact_sha256 in page


def test_approve_in_the_admin_goes_through_the_service(make_user, unit, release, django_capture_on_commit_callbacks):
    validator, officer = make_user(MRV, [unit]), make_user(CO, [unit])
    response = browser_for(validator).post(decide_url(release, "approve"), {"role": MRV, "justification": WHY})
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):  # the attestation is signed once the approval commits
        browser_for(officer).post(decide_url(release, "approve"), {"role": CO, "justification": WHY})
    release.refresh_from_db()
    assert release.state == State.APPROVED and release.attestation
    assert LedgerEntry.objects.filter(subject=release.ledger_subject, kind="release.approval_given").count() == 2
    page = browser_for(officer).get(review_url(release)).content.decode()
    assert 'id="attestation"' in page and f"/{release.pk}/revoke/" in page


def test_a_justification_is_required_in_the_form(make_user, unit, release):
    response = browser_for(make_user(MRV, [unit])).post(decide_url(release, "approve"), {"role": MRV, "justification": ""})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert 'id="confirm-form"' in response.content.decode()  # the confirmation page again, with the error
    assert not Approval.objects.exists()


def test_requester_finds_no_approve_button(requester, release):
    requester.groups.add(type(requester.groups.first()).objects.get(name=MRV))
    client = browser_for(requester)
    page = client.get(review_url(release)).content.decode()
    assert not offers(page, "approve") and "You requested this release" in page
    response = client.post(decide_url(release, "approve"), {"role": MRV, "justification": WHY}, follow=True)
    assert "may not decide on their own release request" in response.content.decode()
    assert not Approval.objects.exists()


def test_segregation_refusal_is_shown_not_crashed(make_user, unit, release):
    validator = make_user(MRV, [unit])
    release_decide(release=release, actor=validator, role=MRV, decision="approve", justification=WHY)
    response = browser_for(validator).post(decide_url(release, "approve"), {"role": MRV, "justification": WHY}, follow=True)
    assert response.status_code == 200 and "distinct people" in response.content.decode()


def test_another_units_officer_cannot_see_the_release(make_user, other_unit, release):
    client = browser_for(make_user(CO, [other_unit]))
    assert client.get(review_url(release)).status_code == 404
    changelist = client.get("/admin/governance/releaserequest/").content.decode()
    assert f"/releaserequest/{release.pk}/" not in changelist
    attention = client.get("/admin/governance/releaserequest/attention/").content.decode()
    assert f"#{release.pk}" not in attention


def test_auditor_reads_but_cannot_decide(make_user, release):
    client = browser_for(make_user(AUD))
    page = client.get(review_url(release)).content.decode()
    assert not offers(page, "approve")
    assert client.post(decide_url(release, "approve"), {"role": AUD, "justification": WHY}).status_code == 403


@pytest.mark.parametrize("superuser", [False, True])
def test_nobody_deletes_or_edits_releases(make_user, unit, release, superuser):
    client = browser_for(make_user(CO, [unit], superuser=superuser))
    assert client.get(f"/admin/governance/releaserequest/{release.pk}/delete/").status_code in (403, 302)
    assert client.get("/admin/governance/releaserequest/add/").status_code == 403
    response = client.post(
        "/admin/governance/releaserequest/", {"action": "delete_selected", "_selected_action": [release.pk]}
    )
    release.refresh_from_db()
    assert release.state == State.AWAITING_APPROVAL and response.status_code in (200, 302)
    assert client.get("/admin/governance/approvalpolicy/add/").status_code == 403


# role, in own unit?, listed in the changelist, review page, approve button, POST approve
ADMIN_MATRIX = [
    (DS, True, True, 200, False, 403),
    (DS, False, False, 404, False, 404),
    (CO, True, True, 200, True, 302),
    (CO, False, False, 404, False, 404),
    (MRV, True, True, 200, True, 302),
    (MRV, False, False, 404, False, 404),
    (AUD, None, True, 200, False, 403),
]


@pytest.mark.parametrize("role,own,listed,page,button,post", ADMIN_MATRIX)
def test_admin_permission_matrix(make_user, unit, other_unit, release, role, own, listed, page, button, post):
    units = [] if own is None else [unit if own else other_unit]
    client = browser_for(make_user(role, units))
    changelist = client.get("/admin/governance/releaserequest/")
    assert changelist.status_code == 200
    assert (f"/releaserequest/{release.pk}/" in changelist.content.decode()) == listed
    response = client.get(review_url(release))
    assert response.status_code == page
    assert offers(response.content.decode(), "approve") == button
    decision_role = role if role in (CO, MRV) else MRV
    response = client.post(decide_url(release, "approve"), {"role": decision_role, "justification": WHY})
    assert response.status_code == post
    assert Approval.objects.count() == (1 if post == 302 else 0)


def test_nothing_awaits_the_decision_of_someone_who_cannot_decide(make_user, unit, release):
    page = browser_for(make_user(DS, [unit])).get("/admin/governance/releaserequest/attention/").content.decode()
    assert "Nothing awaits your decision." in page
    page = browser_for(make_user(MRV, [unit])).get("/admin/governance/releaserequest/attention/").content.decode()
    assert "Nothing awaits your decision." not in page


def test_a_decision_is_confirmed_on_a_page_that_says_what_follows(make_user, unit, release):
    validator = browser_for(make_user(MRV, [unit]))
    page = validator.get(decide_url(release, "approve")).content.decode()
    assert 'id="confirm-form"' in page
    assert "As Model Risk Validator: the request still needs Compliance Officer." in page
    assert not Approval.objects.exists()  # a GET records nothing
    validator.post(decide_url(release, "approve"), {"role": MRV, "justification": WHY})
    assert Approval.objects.filter(release=release, decision="approve").count() == 1


def test_after_one_approval_the_page_says_who_is_still_needed_and_the_form_is_gone(make_user, unit, release):
    validator = make_user(MRV, [unit])
    release_decide(release=release, actor=validator, role=MRV, decision="approve", justification=WHY)
    page = browser_for(validator).get(review_url(release)).content.decode()
    assert '<p id="still-needs">Still needs: Compliance Officer</p>' in page
    assert not offers(page, "approve") and not offers(page, "reject")
    assert 'id="you-decided">You decided: approve as Model Risk Validator' in page
    assert "Awaiting approval" in page and "awaiting_approval<" not in page
    again = browser_for(validator).get(decide_url(release, "approve")).content.decode()
    assert 'id="refusal"' in again and 'id="confirm-form"' not in again
    officer_page = browser_for(make_user(CO, [unit])).get(decide_url(release, "approve")).content.decode()
    assert "the request is approved" in officer_page


def test_gate_run_and_ledger_references_are_links_a_person_reads(make_user, unit, release):
    validator = make_user(MRV, [unit])
    release_decide(release=release, actor=validator, role=MRV, decision="approve", justification=WHY)
    page = browser_for(validator).get(review_url(release)).content.decode()
    run = release.gate_run
    assert (f'href="/admin/governance/gaterun/{run.pk}/change/" id="gate-run-link">Gate run #{run.pk} of '
            f'{release.model.name} v{release.model_version.version}</a>') in page
    approval = Approval.objects.get()
    assert f'<a href="/admin/audit/ledgerentry/{approval.ledger_seq}/change/">#{approval.ledger_seq}</a>' in page
    release.refresh_from_db()
    assert f'<a href="/admin/audit/ledgerentry/{release.gate_ledger_seq}/change/">' in page
    assert "governance.gaterun:" not in page


def test_the_attestation_is_shown_decoded_with_a_download(make_user, unit, release, django_capture_on_commit_callbacks):
    officer = make_user(CO, [unit])
    release_decide(release=release, actor=make_user(MRV, [unit]), role=MRV, decision="approve", justification=WHY)
    with django_capture_on_commit_callbacks(execute=True):
        release_decide(release=release, actor=officer, role=CO, decision="approve", justification=WHY)
    release.refresh_from_db()
    client = browser_for(officer)
    page = client.get(review_url(release)).content.decode()
    assert "https://in-toto.io/Statement/v1" in page
    assert f"sha256:{release.model_version.artifact_sha256}" in page
    key_id = release.attestation["signatures"][0]["keyid"]
    assert f'<code class="signer-key">{key_id}</code>' in page
    assert release.attestation["payload"] not in page  # no base64 blob
    download = client.get(f"/admin/governance/releaserequest/{release.pk}/attestation.json")
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    assert download.json() == release.attestation


def test_revoking_is_confirmed_first(make_user, unit, release, django_capture_on_commit_callbacks):
    officer = make_user(CO, [unit])
    release_decide(release=release, actor=make_user(MRV, [unit]), role=MRV, decision="approve", justification=WHY)
    with django_capture_on_commit_callbacks(execute=True):
        release_decide(release=release, actor=officer, role=CO, decision="approve", justification=WHY)
    client = browser_for(officer)
    url = f"/admin/governance/releaserequest/{release.pk}/revoke/"
    page = client.get(url).content.decode()
    assert "A revocation is final" in page and 'id="confirm-form"' in page
    release.refresh_from_db()
    assert release.state == State.APPROVED
    assert client.post(url, {"justification": "The monitoring found drift in the income feature."}).status_code == 302
    release.refresh_from_db()
    assert release.state == State.REVOKED
    assert client.post(review_url(release), {"action": "revoke"}).status_code == 405


def test_a_releases_history_is_its_ledger_entries(make_user, unit, release):
    page = browser_for(make_user(CO, [unit])).get(f"/admin/governance/releaserequest/{release.pk}/history/")
    html = page.content.decode()
    entries = LedgerEntry.objects.filter(subject=release.ledger_subject)
    assert page.status_code == 200 and entries.count() >= 2
    for e in entries:
        assert f'href="/admin/audit/ledgerentry/{e.seq}/change/">#{e.seq}</a>' in html
    assert "No ledger entry" not in html
