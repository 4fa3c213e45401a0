"""The quick quote path (api/quick.py) answers a plain `POST /v1/quote` exactly as the FastAPI route
would: the same bytes, on record, counted under the route; anything else reaches the route."""

from __future__ import annotations

import json

import pytest

from api.schemas import EXAMPLE_LISTING
from tests.api.test_record_api import recorded, rows_of  # noqa: F401 - the fixture, reused

LISTING = EXAMPLE_LISTING


def quick_and_routed(client, body: bytes):
    """The same body, answered by the quick path and by the route (a query option that changes
    nothing, `level=0.8`, the default, sends it there)."""
    headers = {"content-type": "application/json"}
    quick = client.post("/v1/quote", content=body, headers=headers)
    routed = client.post("/v1/quote?level=0.8", content=body, headers=headers)
    return quick, routed


@pytest.mark.parametrize(
    "listing",
    [
        LISTING,
        {**LISTING, "listing_id": "KS-7", "fans": "2.5万"},
        {**LISTING, "fans": 5, "category": "没见过的类目"},
        {**LISTING, "violations": False, "live_permission": "未开通", "verified": "未认证"},
    ],
)
def test_the_quick_answer_is_the_routes_byte_for_byte(recorded, listing):  # noqa: F811
    client, engine = recorded
    assert client.app.state.valuer.compiled is not None  # the champion's trees, compiled
    quick, routed = quick_and_routed(client, json.dumps(listing, ensure_ascii=False).encode())
    assert quick.status_code == routed.status_code == 200
    assert quick.content == routed.content
    assert quick.headers["content-type"] == routed.headers["content-type"]
    [row] = rows_of(engine, quick.headers["x-request-id"])
    assert row["answer"].encode() == quick.content and row["query"] is None
    assert row["request"] == json.dumps(listing, ensure_ascii=False)


@pytest.mark.parametrize(
    "body",
    [
        b'{"fans": "lots"}',
        json.dumps({**LISTING, "fans": "lots"}).encode(),
        json.dumps({**LISTING, "extra": 1}).encode(),
        b"[1, 2]",
        b"{not json",
        b'{"fans": NaN}',
        "é".encode("latin-1"),
        b"",
    ],
)
def test_what_the_model_refuses_is_answered_by_the_route(recorded, body):  # noqa: F811
    client, engine = recorded
    quick, routed = quick_and_routed(client, body)
    assert quick.status_code == routed.status_code == 422
    assert quick.json() == routed.json()
    assert rows_of(engine, quick.headers["x-request-id"]) == []


def test_other_content_types_and_methods_reach_the_route(recorded):  # noqa: F811
    client, _ = recorded
    text = client.post(
        "/v1/quote", content=json.dumps(LISTING), headers={"content-type": "text/plain"}
    )
    assert text.status_code == 422  # as FastAPI answers a body it does not read as JSON
    assert client.get("/v1/quote").status_code == 405


def test_quick_answers_are_counted_under_the_route(recorded):  # noqa: F811
    client, _ = recorded

    def served() -> float:
        metrics = client.get("/metrics").text
        line = next(
            (
                line
                for line in metrics.splitlines()
                if line.startswith("valuation_requests_total{")
                and 'endpoint="/v1/quote"' in line
                and 'status="200"' in line
            ),
            None,
        )
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = served()
    for _ in range(3):
        assert client.post("/v1/quote", json=LISTING).status_code == 200
    assert served() == before + 3


def test_without_a_model_the_route_answers_503(modelless):
    answer = modelless.post("/v1/quote", json=LISTING)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "no_model"


def test_without_the_record_no_quick_200(recorded):  # noqa: F811
    client, _ = recorded
    client.app.state.record.close()
    answer = client.post("/v1/quote", json=LISTING)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "record_unavailable"
    assert answer.headers["x-request-id"]


def test_a_plain_quote_takes_the_quick_path_and_an_option_the_route(recorded, monkeypatch):  # noqa: F811
    import api.quick

    served = []
    real = api.quick.full_quote
    monkeypatch.setattr(api.quick, "full_quote", lambda *a: served.append(1) or real(*a))
    client, _ = recorded
    assert client.post("/v1/quote", json=LISTING).status_code == 200
    assert served == [1]
    assert client.post("/v1/quote?explain=true", json=LISTING).status_code == 200
    assert client.post("/v1/quote", json={**LISTING, "fans": "lots"}).status_code == 422
    assert served == [1]  # those two went to the route
