"""Debian's headless chromium through its packaged chromedriver (Selenium), for console tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def start_browser():
    """A headless chromium at 1366x768 (an office screen); skips when the packages are missing."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("chromium and chromium-driver are not installed (sandbox/setup.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1366,768", "--lang=zh-CN"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def shot(driver, folder: Path, name: str) -> Path:
    """Save a screenshot as a test artifact."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_text(driver, by: str, value: str, accept, timeout: float = 10.0) -> str:
    """The element's text once ``accept(text)`` holds. After a click that posts a form, the
    old page's element can still be read, or go stale while it is read, before the next
    page is there; this reads the element afresh until the next page shows it."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):
        text = d.find_element(by, value).text
        return text if accept(text) else False

    return WebDriverWait(driver, timeout, ignored_exceptions=(
        NoSuchElementException, StaleElementReferenceException)).until(shown)
