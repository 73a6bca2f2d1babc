"""/docs in a real headless Chromium (Debian's): it renders every public operation from
/v1/openapi.json, and nothing it loads comes from outside the edge."""

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.contract.test_openapi import PUBLIC


@pytest.fixture
def browser():
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_docs_page_shows_every_operation_from_local_assets(platform, browser):
    browser.get(f"{platform}/docs")
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= len(PUBLIC))
    shown = {
        (e.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"),
         e.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.lower())
        for e in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    }  # fmt: skip
    assert shown == set(PUBLIC)
    assert "RouteMate Integration API" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(url.startswith(platform) for url in loaded), loaded
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
