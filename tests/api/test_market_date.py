"""Quotes as of the market date: shown in every answer, `as_of` an earlier date, a later one
refused with a 422 naming `as_of`; a model trained without dates knows no market date."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from valuation.valuer import Valuer

LISTING = {
    "fans": "13.13W",
    "violations": "无违规",
    "live_permission": "已开通",
    "verified": "已认证",
    "category": "美食",
}


def test_the_model_card_names_the_market_date(client, valuer):
    market_date = client.get("/v1/model").json()["market_date"]
    assert market_date == valuer.market_date.isoformat()
    # the session's sample is dated: its latest sale
    assert valuer.market_date == valuer.market.market_date


def test_every_answer_says_the_date_it_values_at(client, valuer):
    market_date = valuer.market_date.isoformat()
    quote = client.post("/v1/quote", json=LISTING).json()
    assert quote["market_date"] == market_date and quote["as_of"] == market_date
    appraisal = client.post("/v1/appraisal", json={"listing": LISTING, "asking_price": 900})
    assert appraisal.json()["quote"]["as_of"] == market_date
    batch = client.post("/v1/quotes", json={"listings": [LISTING]}).json()
    assert batch["results"][0]["as_of"] == market_date


def test_as_of_an_earlier_date_moves_the_quote_by_the_category_s_level(client, valuer):
    earlier = valuer.market.start + dt.timedelta(days=30)
    now = client.post("/v1/quote", json=LISTING).json()
    then = client.post("/v1/quote", params={"as_of": earlier.isoformat()}, json=LISTING).json()
    assert then["as_of"] == earlier.isoformat()
    level = valuer.market.level(["美食"], earlier)[0]
    assert then["price_estimate"] == pytest.approx(now["price_estimate"] * np.exp(level), abs=1.0)
    batch = client.post(
        "/v1/quotes", params={"as_of": earlier.isoformat()}, json={"listings": [LISTING]}
    ).json()
    assert batch["results"][0]["price_estimate"] == then["price_estimate"]


@pytest.mark.parametrize("path", ["/v1/quote", "/v1/quotes", "/v1/appraisal"])
def test_a_date_after_the_market_date_is_a_422_on_as_of(client, valuer, path):
    body = {
        "/v1/quote": LISTING,
        "/v1/quotes": {"listings": [LISTING]},
        "/v1/appraisal": {"listing": LISTING, "asking_price": 900},
    }[path]
    later = (valuer.market_date + dt.timedelta(days=1)).isoformat()
    answer = client.post(path, params={"as_of": later}, json=body)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["fields"][0]["field"] == "as_of"
    assert "after the market date" in error["message"]


def test_a_date_that_is_not_a_date_is_a_422(client):
    answer = client.post("/v1/quote", params={"as_of": "next week"}, json=LISTING)
    assert answer.status_code == 422
    assert answer.json()["error"]["fields"][0]["field"].endswith("as_of")


@pytest.fixture
def undated(valuer, settings):
    model = Valuer(
        valuer.boosters,
        valuer.encoder,
        replace(valuer.card, market=None),
        name=valuer.name,
        version=valuer.version,
    )
    with TestClient(create_app(settings=settings, valuer=model)) as client:
        yield client


def test_a_model_trained_without_dates_values_at_no_date(undated, valuer):
    assert undated.get("/v1/model").json()["market_date"] is None
    quote = undated.post("/v1/quote", json=LISTING).json()
    assert quote["market_date"] is None and quote["as_of"] is None
    refused = undated.post("/v1/quote", params={"as_of": "2025-06-01"}, json=LISTING)
    assert refused.status_code == 422
    assert "without dates" in refused.json()["error"]["message"]


def test_reasons_as_of_an_earlier_date_end_with_the_market_s_move(client, valuer):
    earlier = valuer.market.start + dt.timedelta(days=30)
    answer = client.post(
        "/v1/quote", params={"as_of": earlier.isoformat(), "explain": "true"}, json=LISTING
    ).json()
    reasons = answer["reasons"]
    assert [s["feature"] for s in reasons["steps"]][-1] == "as_of"
    last = reasons["steps"][-1]
    assert last["value"] == earlier.isoformat()
    assert last["factor"] == pytest.approx(np.exp(valuer.market.level(["美食"], earlier)[0]))
    total = reasons["reference_price"] + sum(s["cny"] for s in reasons["steps"])
    assert total == pytest.approx(answer["price_estimate"], abs=1e-6)
    now = client.post("/v1/quote", params={"explain": "true"}, json=LISTING).json()
    assert "as_of" not in [s["feature"] for s in now["reasons"]["steps"]]
