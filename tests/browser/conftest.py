"""Browser tests: Debian's headless Chromium driven by Selenium against pytest-django's live server.

Chromium and its driver come from the system (`apt-get install chromium chromium-driver`; .ci/run
installs them). Selenium Manager is never asked to download anything: the driver path is given
explicitly. Screenshots land in test-artifacts/browser/ (git-ignored), one per `shot()` call
and one for every failing test.
"""

import re
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
WAIT_SECONDS = 10


def pytest_collection_modifyitems(config, items):
    """Skip browser tests, with the reason, on a machine without Chromium (CI installs it)."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    skip = pytest.mark.skip(reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        page = item.funcargs.get("browser")
        if page is not None:
            page.shot("FAILED")


class Browser:
    """A Chromium session pointed at the live server, with the few steps the tests need."""

    def __init__(self, driver, base_url, test_name):
        self.driver = driver
        self.base_url = base_url
        self.test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self._shots = 0

    def get(self, path):
        self.driver.get(self.base_url + path)

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_for(self, css):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT_SECONDS).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    @property
    def text(self):
        return self.find("body").text

    def login(self, username, password="correct-horse-battery"):
        """Log in through the admin's own login form (the path a person takes)."""
        self.driver.delete_all_cookies()
        self.get("/admin/login/?next=/admin/")
        self.find("#id_username").send_keys(username)
        self.find("#id_password").send_keys(password)
        self.find("input[type=submit]").click()
        # Wait for the answer to the login (the user tools, or the form's error), not for any body:
        # the login page's own body is there at once, and a navigation started then would race the
        # login's redirect.
        self.wait_for("#user-tools, .errornote")

    def logout(self):
        self.driver.delete_all_cookies()

    def shot(self, label):
        """Save a screenshot as a test artifact and return its path."""
        self._shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.test_name}-{self._shots:02d}-{re.sub(r'[^A-Za-z0-9_-]+', '_', label)}.png"
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture(scope="session")
def chromium_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="custos-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chromium_driver, live_server, transactional_db, django_db_serialized_rollback, request):
    """A fresh (cookie-less) browser on the live server for one test.

    The live server sees only committed data, so the test's database is transactional; the
    rollback is serialized so that rows made by data migrations (roles, the ledger head)
    are restored for the next test.
    """
    chromium_driver.delete_all_cookies()
    return Browser(chromium_driver, live_server.url, request.node.name)
