"""The auditor's journey: find a release's ledger entries, read an entry's audit path, and export
the evidence bundle of everything about the model version, which the offline verifier accepts."""

import subprocess
import sys
import time

import pytest

from audit.keys import signing_key
from audit.services import checkpoint_create
from governance.rules import roles
from governance.services.releases import release_request
from tests.gate_verdicts import record_gate_verdict

pytestmark = pytest.mark.browser


def test_auditor_browses_the_ledger_and_exports_a_bundle_that_verifies(browser, credit_model_version, make_user, unit,
                                                                       tmp_path):
    release = record_gate_verdict(release_request(model_version=credit_model_version, environment="staging",
                                                  actor=make_user(roles.DATA_SCIENTIST, [unit])), "passed")
    checkpoint_create()
    make_user(roles.AUDITOR, username="aude.auditor")
    browser.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    browser.login("aude.auditor")

    browser.get(f"/admin/audit/ledgerentry/?q=releaserequest:{release.pk}")
    rows = browser.find_all("#result_list tbody tr")
    assert rows and all(f"releaserequest:{release.pk}" in r.text for r in rows)
    browser.shot("ledger-search")
    browser.find("#result_list tbody tr th a").click()
    browser.wait_for("#proof-download")
    assert "hash(es) from this leaf to the root of checkpoint" in browser.text
    browser.shot("entry-audit-path")

    browser.get("/admin/governance/modelversion/")
    browser.find(f"input[name=_selected_action][value='{credit_model_version.pk}']").click()
    from selenium.webdriver.support.ui import Select

    Select(browser.find("select[name=action]")).select_by_value("export_evidence_bundle")
    browser.shot("export-action")
    browser.find("button[name=index]").click()
    deadline = time.monotonic() + 20
    while not [p for p in tmp_path.glob("evidence-*.json")] and time.monotonic() < deadline:
        time.sleep(0.2)
    (bundle,) = tmp_path.glob("evidence-*.json")
    done = subprocess.run([sys.executable, "-m", "audit.verifier", str(bundle), "--key", signing_key().verifier_key],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
