"""The optional parts of a quote over HTTP: reasons (explain), comparable sales, the range level; and
the level on batches and appraisals."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from valuation import reasons
from valuation.comparables import MAX_K, Comparables
from valuation.listing import Listing
from valuation.schema import FEATURES
from valuation.valuer import Valuer

UNKNOWN = "从没见过的类目"
TYPED = {
    "fans": 131300,
    "violations": True,
    "live_permission": False,
    "verified": True,
    "category": "自媒体",
}
VARIED = [
    TYPED,
    {"fans": 800, "violations": False, "live_permission": True, "verified": False, "category": "美食"},
    {"fans": "2.5M", "violations": "无违规", "live_permission": "已开通", "verified": "已认证",
     "category": "游戏"},
    {"fans": 45_000, "violations": True, "live_permission": True, "verified": False,
     "category": UNKNOWN},
    {"fans": 0, "violations": False, "live_permission": False, "verified": False,
     "category": "搞笑"},
    {"fans": "13.13W", "violations": "有违规", "live_permission": "未开通", "verified": "已认证",
     "category": "自媒体"},
]  # fmt: skip
FIELD_NAMES = [field.name for field in FEATURES]
COMPARABLE_KEYS = {
    "listing_id",
    *FIELD_NAMES,
    "price",
    "sold_at",
    "similarity",
}
STEP_KEYS = {"feature", "value", "factor", "percent", "cny"}


def listing_of(body: dict) -> Listing:
    return Listing.parse({name: body[name] for name in FIELD_NAMES})


def quote(client, body: dict, **params) -> dict:
    response = client.post("/v1/quote", json=body, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def error_fields(response, status: int = 422) -> list[str]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    return [problem["field"] for problem in error["fields"]]


# --- explain -------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", VARIED, ids=range(len(VARIED)))
def test_explained_quote_adds_up_to_the_estimate(client, valuer, body):
    answer = quote(client, body, explain="true")
    explained = answer["reasons"]
    assert set(explained) == {"reference_price", "steps"}
    steps = explained["steps"]
    assert [step["feature"] for step in steps] == list(reasons.ORDER)
    for step in steps:
        assert set(step) == STEP_KEYS
    total = explained["reference_price"] + sum(step["cny"] for step in steps)
    assert total == pytest.approx(answer["price_estimate"], abs=0.01)

    listing = listing_of(body)
    for step in steps:
        assert step["value"] == getattr(listing, step["feature"])
    local = reasons.explain(valuer, listing, valuer.value(listing).price_estimate)
    assert explained["reference_price"] == pytest.approx(local.reference_price, rel=1e-12)
    for shown, step in zip(steps, local.steps, strict=True):
        assert (shown["feature"], shown["value"]) == (step.feature, step.value)
        for key in ("factor", "percent", "cny"):
            assert shown[key] == pytest.approx(getattr(step, key), rel=1e-12, abs=1e-9)


def test_explained_quote_is_the_plain_quote_plus_reasons(client):
    plain = quote(client, TYPED)
    explained = quote(client, TYPED, explain="true")
    assert {key: value for key, value in explained.items() if key != "reasons"} == plain


def test_without_explain_there_are_no_reasons_nor_comparables(client):
    for params in ({}, {"explain": "false"}, {"comparables": 0}):
        answer = quote(client, TYPED, **params)
        assert "reasons" not in answer
        assert "comparables" not in answer


# --- comparables ---------------------------------------------------------------------------------


def test_comparables_are_sorted_sales_with_their_features(client, valuer):
    answer = quote(client, TYPED, comparables=3)
    assert "reasons" not in answer
    sales = answer["comparables"]
    assert len(sales) == 3
    for sale in sales:
        assert set(sale) == COMPARABLE_KEYS
        assert isinstance(sale["fans"], int)
        for flag in ("violations", "live_permission", "verified"):
            assert isinstance(sale[flag], bool)
        assert isinstance(sale["category"], str)
        assert sale["price"] > 0
        assert 0 < sale["similarity"] <= 1
    similarities = [sale["similarity"] for sale in sales]
    assert similarities == sorted(similarities, reverse=True)
    local = valuer.comparables.find(listing_of(TYPED), 3)
    assert [sale["similarity"] for sale in sales] == [comp.similarity for comp in local]
    assert [sale["listing_id"] for sale in sales] == [comp.listing_id for comp in local]


def test_comparables_and_reasons_together(client):
    answer = quote(client, TYPED, comparables=MAX_K, explain="true")
    assert len(answer["comparables"]) == MAX_K
    assert "reasons" in answer


@pytest.mark.parametrize("k", [MAX_K + 1, -1, "many"])
def test_comparables_out_of_bounds_is_422_naming_it(client, k):
    response = client.post("/v1/quote", json=TYPED, params={"comparables": k})
    assert error_fields(response) == ["comparables"]


def test_comparable_without_a_listing_id_is_served(valuer, settings):
    sales = valuer.comparables.sales.head(30).copy()
    sales["listing_id"] = sales["listing_id"].astype(object)
    sales.loc[0, "listing_id"] = float("nan")  # what loading makes of a blank 账号ID
    first = sales.iloc[0]
    body = {name: (v.item() if hasattr(v, "item") else v) for name, v in first[FIELD_NAMES].items()}
    served = Valuer(
        valuer.boosters,
        valuer.encoder,
        valuer.card,
        Comparables(sales),
        valuer.name,
        valuer.version,
    )
    app = create_app(settings=settings, valuer=served)
    with TestClient(app, raise_server_exceptions=False) as own:
        response = own.post("/v1/quote", json=body, params={"comparables": 1})
    assert response.status_code == 200, response.text
    assert response.json()["comparables"][0]["listing_id"] is None


# --- level ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.5, 0.9, 0.95])
@pytest.mark.parametrize("body", VARIED[:3], ids=range(3))
def test_level_sets_the_interval_and_the_range(client, valuer, body, level):
    answer = quote(client, body, level=level)
    valuation = valuer.value(listing_of(body), level)
    assert answer["interval"] == level
    assert answer["price_estimate"] == valuation.price_estimate
    assert answer["price_low"] == valuation.price_low
    assert answer["price_high"] == valuation.price_high


def test_level_widens_the_range_over_http(client):
    narrow, default, wide = (quote(client, TYPED, level=level) for level in (0.5, 0.8, 0.95))
    assert default == quote(client, TYPED)
    assert wide["price_low"] <= default["price_low"] <= narrow["price_low"]
    assert narrow["price_high"] <= default["price_high"] <= wide["price_high"]


@pytest.mark.parametrize("level", [0.4, 0.49, 0.96, 0.99, 1.5, "high"])
@pytest.mark.parametrize("path", ["/v1/quote", "/v1/quotes", "/v1/appraisal"])
def test_level_out_of_bounds_is_422_naming_it(client, path, level):
    body = {
        "/v1/quote": TYPED,
        "/v1/quotes": {"listings": [TYPED]},
        "/v1/appraisal": {"listing": TYPED, "asking_price": 1000},
    }[path]
    response = client.post(path, json=body, params={"level": level})
    assert error_fields(response) == ["level"]


def test_batch_level_applies_to_every_result(client, valuer):
    response = client.post("/v1/quotes", json={"listings": VARIED}, params={"level": 0.5})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["quoted"] == len(VARIED) and answer["failed"] == 0
    for body, result in zip(VARIED, answer["results"], strict=True):
        assert result["interval"] == 0.5
        assert "reasons" not in result and "comparables" not in result
        valuation = valuer.value(listing_of(body), 0.5)
        assert result["price_low"] == valuation.price_low
        assert result["price_high"] == valuation.price_high
        assert {k: v for k, v in result.items() if k != "index"} == quote(client, body, level=0.5)


def test_batch_does_not_take_explain_or_comparables(client):
    response = client.post(
        "/v1/quotes", json={"listings": [TYPED]}, params={"explain": "true", "comparables": 3}
    )
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert "reasons" not in result and "comparables" not in result


# --- appraisal -----------------------------------------------------------------------------------


def appraise(client, body: dict, asking, **params) -> dict:
    response = client.post(
        "/v1/appraisal", json={"listing": body, "asking_price": asking}, params=params
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("body", VARIED[:3], ids=range(3))
def test_appraisal_at_level_half(client, body):
    shown = quote(client, body, level=0.5)
    low, estimate, high = shown["price_low"], shown["price_estimate"], shown["price_high"]
    for asking in sorted({max(low - 1, 1), low, estimate, high, high + 1, high * 3}):
        answer = appraise(client, body, asking, level=0.5)
        assert answer["thresholds"] == {"below_market_under": 0.25, "above_market_over": 0.75}
        assert answer["quote"] == shown
        assert answer["quote"]["interval"] == 0.5
        assert (answer["verdict"] == "fair") is (low <= asking <= high)
        if asking < low:
            assert answer["verdict"] == "below_market"
        elif asking > high:
            assert answer["verdict"] == "above_market"


def test_appraisal_verdict_follows_the_level(client):
    # A price fair at 95% but outside the 50% range.
    narrow = quote(client, TYPED, level=0.5)
    wide = quote(client, TYPED, level=0.95)
    asking = narrow["price_high"] + 1
    assert asking <= wide["price_high"]
    assert appraise(client, TYPED, asking, level=0.5)["verdict"] == "above_market"
    assert appraise(client, TYPED, asking, level=0.95)["verdict"] == "fair"


def test_appraisal_with_explain_and_comparables(client):
    answer = appraise(client, TYPED, 3000, level=0.9, explain="true", comparables=2)
    assert answer["quote"]["interval"] == 0.9
    assert len(answer["quote"]["comparables"]) == 2
    assert answer["quote"]["reasons"] == quote(client, TYPED, explain="true")["reasons"]
    assert answer["thresholds"] == {"below_market_under": 0.05, "above_market_over": 0.95}
    plain = appraise(client, TYPED, 3000)
    assert "reasons" not in plain["quote"] and "comparables" not in plain["quote"]


# --- /v1/model -----------------------------------------------------------------------------------


def test_model_lists_the_levels(client):
    response = client.get("/v1/model")
    assert response.status_code == 200, response.text
    card = response.json()
    assert card["levels"] == [0.5, 0.95]
    assert card["interval"] == 0.8
