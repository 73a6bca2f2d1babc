"""The console in a real headless Chromium (Debian's) through the real edge: a new customer admin
goes from the set-up link to a routed job with only the console and the public API. A screenshot
of every page is saved under var/screenshots/; any browser console error fails the test."""

import os
import re
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from shared.testing.stack import EDGE, EDGE_TLS, VAR
from tests.conftest import EXAMPLE, routemate
from tests.console_session import PASSWORD, add_member, new_org

SHOTS = VAR / "screenshots"


@pytest.fixture
def browser():
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    # Chromium refuses a few ports as unsafe (10080 among them: a shifted second platform's edge).
    options.add_argument(f"--explicitly-allowed-ports={urlsplit(EDGE).port or 80}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def shot(browser: WebDriver, name: str, platform: str) -> None:
    """Save the page, and fail on a console error or on anything loaded from outside the edge."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"console-{name}.png"))
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, (browser.current_url, errors)
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(url.startswith(platform) for url in loaded), loaded


def submit(browser: WebDriver, form_selector: str) -> None:
    browser.find_element(By.CSS_SELECTOR, f"{form_selector} button[type=submit]").click()


def until(browser: WebDriver, condition, seconds: float = 20):
    """Wait for a condition across a navigation: an element of the page being replaced goes stale."""
    return WebDriverWait(browser, seconds, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def wait_for(browser: WebDriver, selector: str, seconds: float = 20):
    return until(browser, lambda d: d.find_element(By.CSS_SELECTOR, selector), seconds)


async def test_a_new_admin_goes_from_the_set_up_link_to_a_routed_job(platform, browser):
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    added = routemate("user", "add", "--org", new_org(), "--email", email, "--role", "admin")
    browser.get(platform + "/" + added["setup_link"].split("/", 3)[3])
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "password_again").send_keys(PASSWORD)
    shot(browser, "setup", platform)
    submit(browser, "form")
    wait_for(browser, ".notice")
    assert browser.current_url.endswith("/login?setup=done")
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    shot(browser, "login", platform)
    submit(browser, "form")
    wait_for(browser, "table[data-testid=jobs]")
    shot(browser, "jobs-empty", platform)

    driver_email = f"driver-{uuid.uuid4().hex[:6]}@example.com"
    browser.get(platform + "/drivers")
    browser.find_element(By.ID, "driver-email").send_keys(driver_email)
    browser.find_element(By.ID, "driver-name").send_keys("Dana Driver")
    submit(browser, "form[action='/drivers']")
    until(browser, lambda d: driver_email in d.page_source, 20)
    shot(browser, "drivers", platform)

    browser.get(platform + "/settings/integrations")
    browser.find_element(By.ID, "name").send_keys("Warehouse system")
    submit(browser, "form[action='/settings/integrations']")
    client_id = wait_for(browser, "[data-testid=client-id]").text
    secret = browser.find_element(By.CSS_SELECTOR, "[data-testid=client-secret]").text
    assert "will not be shown again" in browser.page_source
    shot(browser, "integration-created", platform)

    async with httpx.AsyncClient(base_url=platform, timeout=60) as api:
        issued = await api.post("/v1/integration-token", json={"client_id": client_id, "client_secret": secret})
        assert issued.status_code == 200, issued.text
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        body = {**EXAMPLE, "external_job_id": f"CONSOLE-{uuid.uuid4().hex[:8]}", "driver_email": driver_email,
                "depot": {"lat": -27.4698, "lng": 153.0251}}  # fmt: skip
        job = await api.post("/v1/integration-import", json=body, headers=bearer)
    assert job.status_code == 201, job.text
    job_id, routed = job.json()["job_id"], job.json()["stops"]

    browser.get(platform + "/jobs")
    wait_for(browser, f"tr[data-job-id='{job_id}']")
    shot(browser, "jobs", platform)
    browser.find_element(By.CSS_SELECTOR, f"tr[data-job-id='{job_id}'] a").click()
    wait_for(browser, "svg[data-testid=route]")
    numbers = [g.get_attribute("data-sequence") for g in browser.find_elements(By.CSS_SELECTOR, "svg .stop")]
    assert numbers == [str(s["sequence"]) for s in routed]
    assert browser.find_elements(By.CSS_SELECTOR, "svg .depot") and browser.find_elements(By.CSS_SELECTOR, "svg .path")
    rows = browser.find_elements(By.CSS_SELECTOR, "table[data-testid=stops] tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == [s["external_stop_id"] for s in routed]
    assert "km" in browser.find_element(By.CSS_SELECTOR, "[data-testid=total-distance]").text
    shot(browser, "job", platform)

    browser.get(platform + "/settings/integrations")
    assert secret not in browser.page_source  # shown once only
    row = f"tr[data-client-id='{client_id}']"
    Select(browser.find_element(By.CSS_SELECTOR, f"{row} select")).select_by_value("3600")
    submit(browser, f"{row} form[action$='/rotate']")
    rotated = wait_for(browser, "[data-testid=client-secret]").text
    assert rotated != secret and "Old secret works until" in browser.page_source
    shot(browser, "integration-rotated", platform)
    async with httpx.AsyncClient(base_url=platform, timeout=60) as api:
        for value in (secret, rotated):  # the old one still works during its grace hour
            again = await api.post("/v1/integration-token", json={"client_id": client_id, "client_secret": value})
            assert again.status_code == 200
    browser.get(platform + "/settings/integrations")
    submit(browser, f"{row} form[action$='/revoke']")
    until(browser, lambda d: "revoked" in d.find_element(By.CSS_SELECTOR, row).text, 20)
    shot(browser, "integration-revoked", platform)
    async with httpx.AsyncClient(base_url=platform, timeout=60) as api:
        refused = await api.post("/v1/integration-token", json={"client_id": client_id, "client_secret": rotated})
        assert refused.status_code == 401

    browser.get(platform + "/settings/webhooks")
    browser.find_element(By.ID, "url").send_keys("https://hooks.example.com/routemate")
    submit(browser, "form[action='/settings/webhooks']")
    assert wait_for(browser, "[data-testid=webhook-secret]").text.startswith("whsec_")
    assert "hooks.example.com" in browser.find_element(By.CSS_SELECTOR, "table[data-testid=webhooks]").text
    shot(browser, "webhooks", platform)

    browser.get(platform + "/members")
    browser.find_element(By.ID, "invite-email").send_keys(f"viewer-{uuid.uuid4().hex[:6]}@example.com")
    Select(browser.find_element(By.ID, "invite-role")).select_by_value("viewer")
    submit(browser, "form[action='/members']")
    # Links are built on the console's ROUTEMATE_BASE_URL: the platform's, or by default the TLS edge.
    public = os.environ.get("ROUTEMATE_BASE_URL", EDGE_TLS).rstrip("/")
    assert wait_for(browser, "[data-testid=setup-link]").text.startswith(f"{public}/setup?token=rm_setup_")
    shot(browser, "members", platform)

    browser.get(platform + "/activity")
    trail = browser.find_element(By.CSS_SELECTOR, "table[data-testid=activity]").text
    for change in ("MemberSignedIn", "DriverRegistered", "IntegrationCreated", "SecretRotated", "IntegrationRevoked",
                   "MemberInvited"):  # fmt: skip
        assert change in trail, trail
    shot(browser, "activity", platform)
    browser.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
    wait_for(browser, "#email")
    browser.get(platform + "/jobs")
    assert browser.current_url.endswith("/login")


def test_creating_a_credential_works_with_the_keyboard_alone(platform, browser):
    email = add_member(new_org(), "developer", via_cli=True)
    browser.get(platform + "/login")
    typed = browser.switch_to.active_element  # the email field has the focus on arrival
    typed.send_keys(email, Keys.TAB)
    browser.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
    wait_for(browser, "table[data-testid=jobs]")
    browser.get(platform + "/settings/integrations")
    for _ in range(20):  # Tab through the page (header links, sign-out) to the name field
        if browser.switch_to.active_element.get_attribute("id") == "name":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "name"
    browser.switch_to.active_element.send_keys("Keyboard only", Keys.ENTER)
    secret = wait_for(browser, "[data-testid=client-secret]").text
    assert re.fullmatch(r"\S{20,}", secret)
    for _ in range(20):  # on to the secret's copy button; Enter presses it
        active = browser.switch_to.active_element
        if active.get_attribute("data-copy") == "client-secret":
            break
        active.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("data-copy") == "client-secret"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    until(browser, lambda d: d.switch_to.active_element.text != "Copy", 10)
    shot(browser, "keyboard", platform)
