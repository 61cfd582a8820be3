"""The browser harness itself: a person with a demo role logs into the admin."""

import pytest

from governance.rules import roles

pytestmark = pytest.mark.browser


def test_compliance_officer_logs_into_the_admin(browser, make_user, unit):
    officer = make_user(roles.COMPLIANCE_OFFICER, [unit], username="colin.compliance")
    browser.login(officer.username)
    browser.wait_for("#user-tools")
    assert "colin.compliance" in browser.find("#user-tools").text.lower()
    assert "Governance and audit of regulated models" in browser.text
    assert browser.shot("admin-index").stat().st_size > 1000


def test_a_wrong_password_is_refused(browser, make_user, unit):
    make_user(roles.MODEL_RISK_VALIDATOR, [unit], username="vera.validator")
    browser.login("vera.validator", password="not-the-password")
    assert browser.find_all("#user-tools") == []
    assert "correct username and password" in browser.text
    browser.shot("login-refused")
