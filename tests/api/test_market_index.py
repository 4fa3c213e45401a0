"""GET /v1/market: every category's change, one category's monthly index, and honest refusals."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from valuation.listing import Listing
from valuation.trends import MIN_INDEX_SALES, _months_before, month_ends
from valuation.valuer import Valuer


def test_the_market_lists_every_category_with_its_changes(client, valuer):
    answer = client.get("/v1/market")
    assert answer.status_code == 200
    body = answer.json()
    assert body["market_date"] == valuer.market_date.isoformat()
    names = [row["category"] for row in body["categories"]]
    assert sorted(names) == sorted(valuer.market.sales)
    counts = [row["sales"] for row in body["categories"]]
    assert counts == sorted(counts, reverse=True)
    for row in body["categories"]:
        assert set(row["changes"]) == {"3m", "12m"}
        if row["sales"] < MIN_INDEX_SALES:
            assert row["changes"] == {"3m": None, "12m": None}


def _big_and_thin(valuer):
    ordered = sorted(valuer.market.sales.items(), key=lambda item: item[1])
    thin = next(name for name, n in ordered if n < MIN_INDEX_SALES)
    big = ordered[-1][0]
    return big, thin


def test_a_category_s_index_runs_month_by_month_to_the_market_date(client, valuer):
    big, _ = _big_and_thin(valuer)
    body = client.get("/v1/market", params={"category": big}).json()
    months = [point["month"] for point in body["index"]]
    assert months == sorted(months) and len(set(months)) == len(months)
    assert months[0] == valuer.market.start.strftime("%Y-%m")
    assert months[-1] == valuer.market_date.strftime("%Y-%m")
    for point in body["index"]:
        assert 0 < point["low"] <= point["value"] <= point["high"]
    # the last month is the typical listing's quote at the market date, band shut
    now = valuer.value(Listing.parse(body["listing"])).price_estimate
    assert body["index"][-1]["value"] == now
    assert body["listing"]["category"] == big
    # the band widens going back from the market date
    assert body["index"][0]["high"] - body["index"][0]["low"] > 0
    # the change over 3 months is the index's own
    three = _months_before(valuer.market_date, 3)
    level = valuer.market.level([big], three)[0]
    assert body["changes"]["3m"] == pytest.approx(math.exp(-level) - 1, abs=1e-4)


def test_a_thin_category_says_so_instead_of_drawing_noise(client, valuer):
    _, thin = _big_and_thin(valuer)
    body = client.get("/v1/market", params={"category": thin}).json()
    assert body["index"] == []
    assert "too few" in body["note"] and str(body["sales"]) in body["note"]


def test_a_category_not_in_the_data_is_a_404(client):
    answer = client.get("/v1/market", params={"category": "从没见过的类目"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "no_market_index"


def test_a_model_without_dates_has_no_market(valuer, settings):
    model = Valuer(
        valuer.boosters,
        valuer.encoder,
        replace(valuer.card, market=None),
        name=valuer.name,
        version=valuer.version,
    )
    with TestClient(create_app(settings=settings, valuer=model)) as undated:
        answer = undated.get("/v1/market")
        assert answer.status_code == 404
        assert "without dates" in answer.json()["error"]["message"]


def test_month_ends_cover_every_calendar_month():
    days = month_ends(dt.date(2024, 11, 15), dt.date(2025, 2, 10))
    assert days == [
        dt.date(2024, 11, 30),
        dt.date(2024, 12, 31),
        dt.date(2025, 1, 31),
        dt.date(2025, 2, 10),
    ]


@pytest.mark.parametrize(
    "day, months, expected",
    [
        (dt.date(2026, 3, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2026, 3, 15), 12, dt.date(2025, 3, 15)),
        (dt.date(2026, 1, 31), 3, dt.date(2025, 10, 31)),
    ],
)
def test_months_before_stays_in_the_calendar(day, months, expected):
    assert _months_before(day, months) == expected


def test_metrics_expose_the_served_model_s_market_date(client, valuer):
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    (sample,) = families["valuation_market_date_timestamp_seconds"].samples
    day = valuer.market_date
    assert sample.value == dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def test_a_category_is_read_as_a_quote_reads_it(client, valuer):
    big, _ = _big_and_thin(valuer)
    plain = client.get("/v1/market", params={"category": big}).json()
    padded = client.get("/v1/market", params={"category": f"  {big} "})
    assert padded.status_code == 200
    assert padded.json()["index"] == plain["index"]
