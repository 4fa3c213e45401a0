"""The quote page in a real headless Chromium against a real server: what a seller sees is what
the API answers."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request

import pytest

from tests.api.server import running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("VALUATION_SKIP_BROWSER") != "1":
    pytest.fail(
        "no chromium: `make test` installs Debian's chromium; set VALUATION_SKIP_BROWSER=1 to skip",
        pytrace=False,
    )
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="VALUATION_SKIP_BROWSER=1")

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server(trained, settings):
    with running_server(settings) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def _post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


def _yuan(value: float) -> str:
    return f"¥{round(value):,}"


def test_a_seller_gets_the_api_estimate(server, browser):
    page = browser.new_page()
    page.goto(server)
    page.wait_for_function("document.querySelectorAll('#category option').length > 0")
    page.fill("#fans", "13.13W")
    page.select_option("#violations", "有违规")
    page.select_option("#live_permission", "未开通")
    page.select_option("#verified", "已认证")
    page.select_option("#category", "自媒体")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])")

    expected = _post(
        server,
        "/v1/quote",
        {
            "fans": "13.13W",
            "violations": "有违规",
            "live_permission": "未开通",
            "verified": "已认证",
            "category": "自媒体",
        },
    )
    assert page.text_content("#estimate") == _yuan(expected["price_estimate"])
    assert (
        page.text_content("#range")
        == f"{_yuan(expected['price_low'])} – {_yuan(expected['price_high'])}"
    )
    assert page.text_content("#model-version") == expected["model"]["version"]
    assert page.is_hidden("#appraisal")
    page.close()


def test_a_broker_gets_the_api_verdict(server, browser):
    listing = {
        "fans": "52000",
        "violations": "无违规",
        "live_permission": "已开通",
        "verified": "未认证",
        "category": "美食",
    }
    quote = _post(server, "/v1/quote", listing)
    asking = quote["price_high"] * 1.5  # well above the range
    expected = _post(server, "/v1/appraisal", {"listing": listing, "asking_price": asking})

    page = browser.new_page()
    page.goto(server)
    page.wait_for_function("document.querySelectorAll('#category option').length > 0")
    page.check("#broker-mode")
    page.fill("#fans", listing["fans"])
    page.select_option("#violations", listing["violations"])
    page.select_option("#live_permission", listing["live_permission"])
    page.select_option("#verified", listing["verified"])
    page.select_option("#category", listing["category"])
    page.fill("#asking_price", f"{asking:.2f}")
    page.click("#submit")
    page.wait_for_selector("#appraisal:not([hidden])")

    assert expected["verdict"] == "above_market"
    assert page.get_attribute("#verdict", "data-verdict") == expected["verdict"]
    assert page.text_content("#percentile") == f"{expected['percentile'] * 100:.1f}"
    assert page.text_content("#estimate") == _yuan(expected["quote"]["price_estimate"])
    page.close()


def test_an_unreadable_fans_value_is_named_on_the_page(server, browser):
    page = browser.new_page()
    page.goto(server)
    page.wait_for_function("document.querySelectorAll('#category option').length > 0")
    page.fill("#fans", "很多")
    page.click("#submit")
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert page.text_content("#error").startswith("fans:")
    assert page.is_hidden("#result")
    page.close()
