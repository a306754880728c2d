"""Headless Chromium for the tests that open pages (skipped, with the reason, where absent)."""

from __future__ import annotations

import shutil

import pytest


def browser():
    chromium = (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip(
            "headless Chromium is not installed (make test installs it where apt is available)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,2000",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def images_on_page(drv, at_least: int = 1) -> tuple[int, list[str]]:
    """``(number of images, the sources of those not decoded)`` on the current page, once it
    shows at least ``at_least`` images, all decoded, or after 10 s: Chromium can answer a
    file:// ``get`` before the new document's images are in the DOM."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def state(d) -> tuple[int, list[str]]:
        n, broken = d.execute_script(
            "const imgs = Array.from(document.images);"
            "return [imgs.length, imgs.filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.src)];"
        )
        return int(n), list(broken)

    try:
        WebDriverWait(drv, 10, poll_frequency=0.05).until(
            lambda d: (lambda n, broken: n >= at_least and not broken)(*state(d))
        )
    except TimeoutException:
        pass  # the caller's assertion names the page and what is missing
    return state(drv)
