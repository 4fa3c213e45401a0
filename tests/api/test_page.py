"""The quote page in a real headless Chromium against a real server: what a seller sees is what
the API answers."""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
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
    assert page.get_attribute("#deal-rating", "data-rating") == expected["deal_rating"]
    assert page.text_content("#percentile") == f"{expected['percentile'] * 100:.1f}"
    assert page.text_content("#estimate") == _yuan(expected["quote"]["price_estimate"])
    # Broker mode asks for the reasons and comparables too; the appraisal carries them in `quote`.
    assert page.locator("#reasons .step").count() == 5
    assert page.locator("#comparables tr.comp").count() == 5
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


SELLER_LISTING = {
    "fans": "13.13W",
    "violations": "有违规",
    "live_permission": "未开通",
    "verified": "已认证",
    "category": "自媒体",
}
EXPLAINED = "/v1/quote?explain=true&comparables=5"


def _quote_on_page(server, browser, listing: dict):
    page = browser.new_page()
    page.goto(server)
    page.wait_for_function("document.querySelectorAll('#category option').length > 0")
    page.fill("#fans", listing["fans"])
    for field in ("violations", "live_permission", "verified", "category"):
        page.select_option(f"#{field}", listing[field])
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])")
    return page


def _range(text: str) -> tuple[int, int]:
    low, high = text.split(" – ")
    return int(low.lstrip("¥").replace(",", "")), int(high.lstrip("¥").replace(",", ""))


def test_the_waterfall_shows_the_api_reasons(server, browser):
    expected = _post(server, EXPLAINED, SELLER_LISTING)
    page = _quote_on_page(server, browser, SELLER_LISTING)

    steps = page.locator("#reasons .step")
    assert steps.count() == 5
    features = [steps.nth(i).get_attribute("data-feature") for i in range(5)]
    cny = [float(steps.nth(i).get_attribute("data-cny")) for i in range(5)]
    assert features == ["fans", "category", "violations", "live_permission", "verified"]
    assert features == [step["feature"] for step in expected["reasons"]["steps"]]
    assert cny == [step["cny"] for step in expected["reasons"]["steps"]]

    reference = float(page.get_attribute("#reference-price", "data-price"))
    assert reference == expected["reasons"]["reference_price"]
    assert page.text_content("#estimate") == _yuan(expected["price_estimate"])
    assert reference + sum(cny) == pytest.approx(expected["price_estimate"], abs=0.01)
    # Each step says which way it moves the price, in CNY and percent.
    for i, step in enumerate(expected["reasons"]["steps"]):
        row = steps.nth(i)
        sign = "-" if step["cny"] < 0 else "+"
        assert (sign + _yuan(abs(step["cny"]))) in row.text_content()
        assert f"{sign}{abs(step['percent']):.1f}%" in row.text_content()
        direction = "down" if step["cny"] < 0 else "up"
        assert direction in row.get_attribute("class").split()
    page.close()


def test_the_comparables_table_shows_the_api_sales(server, browser):
    expected = _post(server, EXPLAINED, SELLER_LISTING)
    page = _quote_on_page(server, browser, SELLER_LISTING)

    rows = page.locator("#comparables tr.comp")
    assert rows.count() == 5 == len(expected["comparables"])
    prices = [float(rows.nth(i).get_attribute("data-price")) for i in range(5)]
    assert prices == [comp["price"] for comp in expected["comparables"]]
    first, comp = rows.nth(0).locator("td").all_text_contents(), expected["comparables"][0]
    fans = f"{comp['fans'] / 10000:.2f}W" if comp["fans"] >= 10000 else f"{comp['fans']:,}"
    assert first[1] == fans
    assert first[6] == _yuan(comp["price"])
    page.close()


def test_a_wider_level_gives_the_api_range(server, browser):
    page = _quote_on_page(server, browser, SELLER_LISTING)
    at_80 = page.text_content("#range")
    assert page.input_value("#level") == "0.8"

    page.select_option("#level", "0.95")
    page.wait_for_function(
        "(before) => document.getElementById('range').textContent !== before", arg=at_80
    )
    expected = _post(server, "/v1/quote?level=0.95", SELLER_LISTING)
    assert expected["interval"] == 0.95
    at_95 = page.text_content("#range")
    assert at_95 == f"{_yuan(expected['price_low'])} – {_yuan(expected['price_high'])}"
    low_80, high_80 = _range(at_80)
    low_95, high_95 = _range(at_95)
    assert low_95 <= low_80 and high_95 >= high_80 and high_95 - low_95 > high_80 - low_80
    page.close()


def _get(base: str, path: str) -> dict:
    return json.loads(urllib.request.urlopen(f"{base}{path}", timeout=10).read())


def _quote_with_trend(page, server, category: str) -> None:
    page.goto(server)
    page.wait_for_function("document.querySelectorAll('#category option').length > 0")
    page.fill("#fans", "52000")
    page.select_option("#category", category)
    page.click("#submit")
    page.wait_for_selector("#trend-box:not([hidden])")


def test_the_quote_shows_its_category_s_trend_as_the_api_draws_it(server, browser):
    market = _get(server, "/v1/market")
    big = market["categories"][0]["category"]  # the most sales
    expected = _get(server, "/v1/market?category=" + urllib.parse.quote(big))
    page = browser.new_page()
    _quote_with_trend(page, server, big)
    points = page.eval_on_selector_all(
        "#trend-chart circle.point",
        "dots => dots.map(d => [d.dataset.month, Number(d.dataset.value)])",
    )
    assert points == [[p["month"], p["value"]] for p in expected["index"]]
    assert page.is_visible("#trend-chart svg polygon.band")
    assert page.is_hidden("#trend-note")
    assert f"{market['market_date']}" in page.text_content("#as-of")
    page.close()


def test_a_thin_category_shows_its_note_and_no_chart(server, browser):
    market = _get(server, "/v1/market")
    thin = market["categories"][-1]["category"]  # the fewest sales
    expected = _get(server, "/v1/market?category=" + urllib.parse.quote(thin))
    assert expected["index"] == [], "the fixture's smallest category should be too thin"
    page = browser.new_page()
    _quote_with_trend(page, server, thin)
    assert page.text_content("#trend-note") == expected["note"]
    assert page.query_selector("#trend-chart svg") is None
    page.close()


def test_the_form_is_built_from_the_api_description_of_a_listing(server, browser):
    """One input per field of ListingIn in the OpenAPI document, labelled and offering what the
    document declares: adding a field to the schema adds it to the page."""
    listing_in = json.loads(urllib.request.urlopen(f"{server}/openapi.json", timeout=10).read())[
        "components"
    ]["schemas"]["ListingIn"]
    page = browser.new_page()
    page.goto(server)
    page.wait_for_selector("#category option", state="attached")
    ids = page.eval_on_selector_all("#fields [name]", "nodes => nodes.map(n => n.id)")
    assert ids == [*listing_in["required"], "asking_price"]
    for name in listing_in["required"]:
        declared = listing_in["properties"][name]
        assert page.inner_text(f"label[for={name}]") == declared["x-label"]
        if declared["x-kind"] == "flag":
            offered = page.eval_on_selector_all(
                f"#{name} option", "nodes => nodes.map(n => n.value)"
            )
            assert offered == [choice["value"] for choice in declared["x-choices"]]
    headers = page.eval_on_selector_all("#comparables-head th", "nodes => nodes.length")
    assert headers == 1 + len(listing_in["required"]) + 3
    page.close()


def test_a_seller_sees_the_api_advice(server, browser):
    listing = {
        "fans": "13.13W",
        "violations": "有违规",
        "live_permission": "未开通",
        "verified": "已认证",
        "category": "自媒体",
    }
    expected = json.loads(
        urllib.request.urlopen(
            urllib.request.Request(
                f"{server}/v1/quote?advice=true",
                data=json.dumps(listing).encode(),
                headers={"Content-Type": "application/json"},
            ),
            timeout=10,
        ).read()
    )["advice"]
    page = _quote_on_page(server, browser, listing)
    page.wait_for_selector("#advice-box:not([hidden])")
    shown = page.eval_on_selector_all(
        "#advice li", "nodes => nodes.map(n => [n.dataset.feature, Number(n.dataset.price)])"
    )
    assert shown == [[a["feature"], a["price_estimate"]] for a in expected]
    page.close()


def test_a_pasted_card_gets_the_api_estimate(server, browser):
    card = "13.13WW\n有违规\n未开通\n已认证\n粉丝数量\n有无违规\n直播权限\n认证状态"
    expected = _post(server, "/v1/quote/card", {"text": card, "category": "自媒体"})
    page = browser.new_page()
    page.goto(server)
    page.wait_for_function("document.querySelectorAll('#category option').length > 0")
    page.select_option("#category", "自媒体")
    page.click("#card-box summary")
    page.fill("#card-text", card)
    page.click("#card-submit")
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#estimate") == _yuan(expected["price_estimate"])
    page.close()
