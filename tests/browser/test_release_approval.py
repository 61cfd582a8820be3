"""A validator and an officer approve a release in the browser; others cannot."""

import pytest

from audit.attestation import verify_artifact
from audit.verifier import load_verifier_keys
from audit.keys import signing_key
from governance.rules import roles
from governance.rules.releases import State
from governance.services.releases import release_request
from tests.gate_verdicts import record_gate_verdict

pytestmark = pytest.mark.browser
WHY = "Checked fairness by group and the SHAP ranking; independent of development."


@pytest.fixture
def release(credit_model_version, make_user, unit):
    requester = make_user(roles.DATA_SCIENTIST, [unit], username="dana.scientist")
    r = release_request(model_version=credit_model_version, environment="production", actor=requester)
    return record_gate_verdict(r, "passed")


def decide(browser, release, role, decision="approve"):
    """Open the decision's confirmation page from the review page, read it, confirm."""
    browser.get(f"/admin/governance/releaserequest/{release.pk}/review/")
    browser.wait_for(f"#{decision}").click()
    browser.wait_for("#confirm-form")
    from selenium.webdriver.support.ui import Select

    assert f"As {role}:" in browser.find("#consequences").text
    Select(browser.find("#id_role")).select_by_visible_text(role)
    browser.find("#id_justification").send_keys(WHY)
    browser.shot(f"{role}-confirm-{decision}")
    browser.find("#confirm-button").click()
    browser.wait_for(".messagelist")


def test_validator_and_officer_approve_and_the_attestation_verifies(
    browser, release, make_user, unit, credit_model_artifact, tmp_path
):
    make_user(roles.MODEL_RISK_VALIDATOR, [unit], username="vera.validator")
    make_user(roles.COMPLIANCE_OFFICER, [unit], username="colin.compliance")

    browser.login("vera.validator")
    browser.get("/admin/")
    assert "1 release request awaiting your decision" in browser.find("#release-attention").text
    browser.shot("validator-index")
    decide(browser, release, roles.MODEL_RISK_VALIDATOR)
    assert browser.find("#release-state").text == "Awaiting approval"
    assert browser.find("#still-needs").text == "Still needs: Compliance Officer"
    assert browser.find_all("#approve") == [] and "You decided: approve" in browser.find("#you-decided").text
    browser.shot("validator-after-approval-still-needs")

    browser.login("colin.compliance")
    browser.get("/admin/governance/releaserequest/attention/")
    browser.find(f"#awaiting-decision a[href$='/{release.pk}/review/']").click()
    browser.wait_for("#still-needs")
    browser.shot("officer-review")
    assert "the request is approved" in _confirmation_text(browser, release)
    decide(browser, release, roles.COMPLIANCE_OFFICER)
    assert browser.find("#release-state").text == "Approved"
    assert browser.find_all("#still-needs") == []
    assert "https://in-toto.io/Statement/v1" in browser.find("#attestation").text
    browser.shot("approved")

    release.refresh_from_db()
    assert release.state == State.APPROVED
    artifact = tmp_path / "model.skops"
    artifact.write_bytes(credit_model_artifact[0])
    stmt = verify_artifact(release.attestation, load_verifier_keys([signing_key().verifier_key]), artifact)
    assert [a["approver"] for a in stmt["predicate"]["approvals"]] == ["vera.validator", "colin.compliance"]


def _confirmation_text(browser, release):
    browser.get(f"/admin/governance/releaserequest/{release.pk}/approve/")
    return browser.wait_for("#consequences").text


def test_an_officer_of_another_unit_cannot_see_it(browser, release, make_user, other_unit):
    make_user(roles.COMPLIANCE_OFFICER, [other_unit], username="olga.officer")
    browser.login("olga.officer")
    browser.get("/admin/governance/releaserequest/")
    assert f"/releaserequest/{release.pk}/" not in browser.driver.page_source
    browser.get(f"/admin/governance/releaserequest/{release.pk}/review/")
    assert "Not Found" in browser.text or "not found" in browser.text.lower()
    browser.shot("other-unit-404")


def test_the_requester_finds_no_approve_button(browser, release, make_user):
    requester = release.requester
    requester.groups.add(type(requester.groups.first()).objects.get(name=roles.MODEL_RISK_VALIDATOR))
    browser.login("dana.scientist")
    browser.get(f"/admin/governance/releaserequest/{release.pk}/review/")
    browser.wait_for("#release")
    assert browser.find_all("#approve") == []
    assert "You requested this release" in browser.text
    browser.shot("requester-view")


def test_the_validator_overrides_an_inconclusive_gate_first(browser, credit_model_version, make_user, unit):
    requester = make_user(roles.DATA_SCIENTIST, [unit], username="dana.scientist")
    release = record_gate_verdict(
        release_request(model_version=credit_model_version, environment="production", actor=requester), "inconclusive"
    )
    make_user(roles.MODEL_RISK_VALIDATOR, [unit], username="vera.validator")
    browser.login("vera.validator")
    browser.get(f"/admin/governance/releaserequest/{release.pk}/review/")
    assert browser.wait_for("#still-needs").text == ("Still needs: an override of the inconclusive gate by a Model Risk "
                                                        "Validator; Compliance Officer and Model Risk Validator")
    assert browser.find_all("#approve") == []  # the override comes first
    browser.shot("validator-inconclusive")
    decide(browser, release, roles.MODEL_RISK_VALIDATOR, decision="override")
    decide(browser, release, roles.MODEL_RISK_VALIDATOR, decision="approve")
    assert browser.find("#still-needs").text == "Still needs: Compliance Officer"
    browser.shot("validator-after-override-and-approval")
