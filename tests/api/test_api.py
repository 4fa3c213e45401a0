"""The HTTP API end to end: quotes, batches, appraisals, the model card, health, metrics, errors and
the OpenAPI document, served by the app whose lifespan loads the session's registered champion."""

from __future__ import annotations

import hashlib
import json
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from valuation.listing import Listing
from valuation.schema import FEATURES
from valuation.storage.registry import registered_version

UNKNOWN = "从没见过的类目"
MARKETPLACE = {
    "fans": "13.13W",
    "violations": "有违规",
    "live_permission": "未开通",
    "verified": "已认证",
    "category": "自媒体",
}
TYPED = {
    "fans": 131300,
    "violations": True,
    "live_permission": False,
    "verified": True,
    "category": "自媒体",
}
SAME_LISTING = [
    MARKETPLACE,
    TYPED,
    {**TYPED, "fans": "131,300", "violations": "yes", "live_permission": "no", "verified": 1},
    {**TYPED, "fans": "13.13万", "live_permission": 0, "verified": "true"},
    {**TYPED, "fans": "１３.１３Ｗ", "violations": "有", "live_permission": "否"},
    {**MARKETPLACE, "fans": 131300.0},
]
# A spread of listings: small and large accounts, every flag both ways, an unknown category.
VARIED = [
    {"fans": 800, "violations": False, "live_permission": True, "verified": False, "category": "美食"},
    {"fans": "2.5M", "violations": "无违规", "live_permission": "已开通", "verified": "已认证",
     "category": "游戏"},
    {"fans": 45_000, "violations": True, "live_permission": True, "verified": False,
     "category": UNKNOWN},
    {"fans": "3.5k", "violations": "no", "live_permission": "未开通", "verified": "未认证",
     "category": "宠物"},
    {"fans": 0, "violations": False, "live_permission": False, "verified": False,
     "category": "搞笑"},
    {"fans": "1.2亿", "violations": "有违规", "live_permission": "yes", "verified": "no",
     "category": "三农"},
    MARKETPLACE,
    TYPED,
]  # fmt: skip
FUZZ = settings(max_examples=120, deadline=None)
CHECKED = settings(max_examples=50, deadline=None)
FIELD_NAMES = [field.name for field in FEATURES]
Z_90 = NormalDist().inv_cdf(0.9)


def listing_of(body: dict) -> Listing:
    return Listing.parse({name: body[name] for name in FIELD_NAMES})


def error_fields(response, status: int, code: str | None = None) -> list[str]:
    """Checks the one error shape and returns the fields it names, in order."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    for problem in error["fields"]:
        assert set(problem) == {"field", "message"}
        assert isinstance(problem["field"], str) and problem["field"]
        assert isinstance(problem["message"], str) and problem["message"]
    return [problem["field"] for problem in error["fields"]]


def post_json(client, path: str, body) -> object:
    """Any JSON, NaN and Infinity included (Python's json reads them), sent as the raw body."""
    raw = json.dumps(body, ensure_ascii=False, allow_nan=True).encode()
    return client.post(path, content=raw, headers={"content-type": "application/json"})


def samples(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, keyed by (sample name, sorted labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(snapshot, name: str, **labels) -> float:
    return snapshot.get((name, tuple(sorted(labels.items()))), 0.0)


# --- /v1/quote -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", SAME_LISTING, ids=range(len(SAME_LISTING)))
def test_quote_reads_spellings_and_types_alike(client, valuer, body):
    typed = client.post("/v1/quote", json=TYPED)
    response = client.post("/v1/quote", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == typed.json()
    valuation = valuer.value(Listing(131300, True, False, True, "自媒体"))
    quote = response.json()
    assert quote["price_estimate"] == valuation.price_estimate
    assert quote["price_low"] == valuation.price_low
    assert quote["price_high"] == valuation.price_high


@pytest.mark.parametrize("body", VARIED, ids=range(len(VARIED)))
def test_quote_is_the_registry_champions_valuation(client, valuer, settings, trained, body):
    response = client.post("/v1/quote", json={**body, "listing_id": "ks-0042"})
    assert response.status_code == 200, response.text
    quote = response.json()
    valuation = valuer.value(listing_of(body))
    assert quote["price_estimate"] == valuation.price_estimate
    assert quote["price_low"] == valuation.price_low
    assert quote["price_high"] == valuation.price_high
    assert quote["price_low"] <= quote["price_estimate"] <= quote["price_high"]
    assert quote["price_estimate"] > 0
    assert quote["interval"] == 0.8
    assert quote["currency"] == "CNY"
    assert quote["known_category"] is valuation.known_category
    assert quote["notes"] == valuation.notes
    assert quote["listing_id"] == "ks-0042"
    assert quote["model"] == {
        "name": settings.model_name,
        "version": registered_version(settings, "champion"),
    }
    assert quote["model"]["version"] == trained.model_version


def test_unknown_category_is_flagged_with_a_note(client):
    known = client.post("/v1/quote", json=TYPED).json()
    unknown = client.post("/v1/quote", json={**TYPED, "category": UNKNOWN}).json()
    assert known["known_category"] is True and known["notes"] == []
    assert unknown["known_category"] is False
    assert len(unknown["notes"]) == 1 and "unknown" in unknown["notes"][0]


def test_listing_id_is_echoed_and_optional(client):
    assert client.post("/v1/quote", json={**TYPED, "listing_id": "a-1"}).json()["listing_id"] == (
        "a-1"
    )
    assert client.post("/v1/quote", json={**TYPED, "listing_id": 77}).json()["listing_id"] == "77"
    assert client.post("/v1/quote", json=TYPED).json()["listing_id"] is None


# --- errors --------------------------------------------------------------------------------------

BAD_LISTINGS = {
    "fans_spelling": ({**TYPED, "fans": "lots"}, ["fans"]),
    "fans_unit_unknown": ({**TYPED, "fans": "13.13X"}, ["fans"]),
    "fans_negative": ({**TYPED, "fans": -5}, ["fans"]),
    "fans_negative_text": ({**TYPED, "fans": "-1.2万"}, ["fans"]),
    "fans_fraction": ({**TYPED, "fans": 1.5}, ["fans"]),
    "fans_bool": ({**TYPED, "fans": True}, ["fans"]),
    "missing_category": ({k: v for k, v in TYPED.items() if k != "category"}, ["category"]),
    "missing_two": (
        {k: v for k, v in TYPED.items() if k not in ("fans", "verified")},
        ["fans", "verified"],
    ),
    "extra_field": ({**TYPED, "colour": "red"}, ["colour"]),
    "flag_word": ({**TYPED, "violations": "maybe"}, ["violations"]),
    "flag_number": ({**TYPED, "live_permission": 2}, ["live_permission"]),
    "flag_object": ({**TYPED, "verified": {"a": 1}}, ["verified"]),
    "fans_list": ({**TYPED, "fans": [131300]}, ["fans"]),
    "category_null": ({**TYPED, "category": None}, ["category"]),
    "two_bad": ({**TYPED, "fans": "lots", "violations": "maybe"}, ["fans", "violations"]),
}


@pytest.mark.parametrize("body, fields", BAD_LISTINGS.values(), ids=BAD_LISTINGS.keys())
def test_bad_listing_is_422_naming_each_field(client, body, fields):
    response = client.post("/v1/quote", json=body)
    assert sorted(error_fields(response, 422, "invalid_request")) == sorted(fields)
    for field in fields:
        assert field in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "raw, fields",
    [
        (b"", ["body"]),
        (b"[1, 2]", ["body"]),
        (b'"fans"', ["body"]),
        (b"null", ["body"]),
    ],
    ids=["empty", "list", "string", "null"],
)
def test_body_of_the_wrong_kind_is_422(client, raw, fields):
    response = client.post("/v1/quote", content=raw, headers={"content-type": "application/json"})
    assert error_fields(response, 422, "invalid_request") == fields


def test_no_body_at_all_is_422(client):
    assert error_fields(client.post("/v1/quote"), 422, "invalid_request") == ["body"]


@pytest.mark.parametrize("raw", [b"{bad", b'{"fans": 1,}', b"{'fans': 1}"])
def test_malformed_json_is_422(client, raw):
    response = client.post("/v1/quote", content=raw, headers={"content-type": "application/json"})
    assert len(error_fields(response, 422, "invalid_request")) == 1
    assert "JSON" in response.json()["error"]["message"]


def test_malformed_json_names_the_body(client):
    response = client.post(
        "/v1/quote", content=b"{bad", headers={"content-type": "application/json"}
    )
    assert error_fields(response, 422) == ["body"]


@pytest.mark.parametrize("flag", ["violations", "live_permission", "verified"])
def test_flag_beyond_float_range_is_422(client, flag):
    response = client.post("/v1/quote", json={**TYPED, flag: 10**400})
    assert error_fields(response, 422) == [flag]


def test_batch_with_a_flag_beyond_float_range_keeps_the_others(client):
    response = client.post("/v1/quotes", json={"listings": [TYPED, {**TYPED, "verified": 10**400}]})
    assert response.status_code == 200, response.text
    assert response.json()["results"][1]["fields"][0]["field"] == "verified"


def test_listing_id_with_a_lone_surrogate_is_not_a_500(client):
    raw = json.dumps({**TYPED, "listing_id": "ks-\ud800"}).encode()  # ASCII: escaped as \ud800
    response = client.post("/v1/quote", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (200, 422), response.text


# --- fuzzing: random JSON is answered with 200 or the error shape, never anything else ----------

# Integers stop at 10**300: beyond float range a flag 500s (test_flag_beyond_float_range_is_422).
# Text excludes lone surrogates (test_listing_id_with_a_lone_surrogate_is_not_a_500).
ODD_STRINGS = [
    "NaN", "nan", "Infinity", "-inf", "1e400", "1e-400", "-0", "0", "-5", "13.13W", "1.2亿",
    "9" * 40, "9" * 5000, "有违规", "已开通", "未认证", "yes", "¥3,800", "3800元", "0.38万",
    "", " ", "\x00", "\u200b", "１２３", "９９万", "💰💰", "自媒体", UNKNOWN, "x" * 100,
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**300), 10**300),
    st.integers(-10, 10**7),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(ODD_STRINGS),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
keys = st.sampled_from([*FIELD_NAMES, "listing_id", "listing", "asking_price"]) | st.text(
    max_size=8
)
# Near-valid listings (a good one with fields replaced or dropped) reach the parsers and the model.
near_listings = st.builds(
    lambda drop, replace: {k: v for k, v in {**TYPED, **replace}.items() if k not in drop},
    st.sets(st.sampled_from(FIELD_NAMES), max_size=2),
    st.dictionaries(keys, json_values, max_size=3),
)
listing_bodies = st.one_of(near_listings, st.dictionaries(keys, json_values, max_size=7))
appraisal_bodies = st.one_of(
    st.fixed_dictionaries(
        {"listing": listing_bodies, "asking_price": st.integers(1, 10**6) | json_values}
    ),
    st.dictionaries(keys, json_values, max_size=4),
    json_values,
)


def assert_answered(response) -> dict:
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        error_fields(response, 422, "invalid_request")
    return response.json()


@FUZZ
@given(body=st.one_of(listing_bodies, json_values))
def test_random_json_quotes_are_200_or_422(client, body):
    response = post_json(client, "/v1/quote", body)
    answer = assert_answered(response)
    if response.status_code == 200:
        assert 0 < answer["price_low"] <= answer["price_estimate"] <= answer["price_high"]


@FUZZ
@given(body=appraisal_bodies)
def test_random_json_appraisals_are_200_or_422(client, body):
    response = post_json(client, "/v1/appraisal", body)
    answer = assert_answered(response)
    if response.status_code == 200:
        assert 0 <= answer["percentile"] <= 1
        assert answer["verdict"] in ("below_market", "fair", "above_market")


@CHECKED
@given(listings=st.lists(listing_bodies, max_size=5))
def test_random_json_batches_are_200_with_an_entry_each(client, listings):
    response = post_json(client, "/v1/quotes", {"listings": listings})
    answer = assert_answered(response)
    assert response.status_code == 200
    assert [result["index"] for result in answer["results"]] == list(range(len(listings)))
    assert answer["quoted"] + answer["failed"] == len(listings)


# --- /v1/quotes ----------------------------------------------------------------------------------


def test_batch_answers_in_order_with_errors_in_place(client):
    bad = {**TYPED, "fans": "lots", "verified": "maybe", "colour": "red", "listing_id": "bad-1"}
    listings = [
        {**VARIED[0], "listing_id": "a"},
        bad,
        {**VARIED[1], "listing_id": "c"},
        {"listing_id": 5},
    ]
    response = client.post("/v1/quotes", json={"listings": listings})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["quoted"] == 2 and answer["failed"] == 2
    results = answer["results"]
    assert [result["index"] for result in results] == [0, 1, 2, 3]
    # A numeric id is an id ("5"), echoed as a quoted listing's would be.
    assert [result["listing_id"] for result in results] == ["a", "bad-1", "c", "5"]
    assert results[1]["error"] == "invalid_listing"
    assert sorted(problem["field"] for problem in results[1]["fields"]) == [
        "colour",
        "fans",
        "verified",
    ]
    assert results[3]["error"] == "invalid_listing"
    assert sorted(problem["field"] for problem in results[3]["fields"]) == sorted(FIELD_NAMES)
    for priced in (results[0], results[2]):
        assert "error" not in priced
        assert priced["price_low"] <= priced["price_estimate"] <= priced["price_high"]


def test_batch_equals_single_quotes(client, trained):
    listings = [{**body, "listing_id": f"id-{i}"} for i, body in enumerate(VARIED + SAME_LISTING)]
    answer = client.post("/v1/quotes", json={"listings": listings}).json()
    assert answer["model"] == {"name": "kuaishou-account-price", "version": trained.model_version}
    assert answer["quoted"] == len(listings) and answer["failed"] == 0
    for index, (listing, result) in enumerate(zip(listings, answer["results"], strict=True)):
        single = client.post("/v1/quote", json=listing).json()
        assert result == {"index": index, **single}


def test_batch_of_ten_thousand_is_priced(client, valuer):
    categories = [*valuer.encoder.categories, UNKNOWN]
    listings = [
        {
            "fans": (i * 7919) % 3_000_000,
            "violations": bool(i & 1),
            "live_permission": bool(i & 2),
            "verified": bool(i & 4),
            "category": categories[i % len(categories)],
        }
        for i in range(10_000)
    ]
    response = client.post("/v1/quotes", json={"listings": listings})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["quoted"] == 10_000 and answer["failed"] == 0
    assert [result["index"] for result in answer["results"]] == list(range(10_000))
    for index in range(0, 10_000, 397):
        result, valuation = answer["results"][index], valuer.value(listing_of(listings[index]))
        assert result["price_estimate"] == valuation.price_estimate
        assert (result["price_low"], result["price_high"]) == (
            valuation.price_low,
            valuation.price_high,
        )
        assert result["known_category"] is valuation.known_category


def test_batch_over_ten_thousand_is_refused(client):
    response = client.post("/v1/quotes", json={"listings": [TYPED] * 10_001})
    assert error_fields(response, 422, "invalid_request") == ["listings"]


def test_empty_batch_has_empty_results(client, trained):
    answer = client.post("/v1/quotes", json={"listings": []}).json()
    assert answer["quoted"] == 0 and answer["failed"] == 0 and answer["results"] == []
    assert answer["model"]["version"] == trained.model_version


@pytest.mark.parametrize(
    "body, fields",
    [
        ({}, ["listings"]),
        ({"listings": TYPED}, ["listings"]),
        ({"listings": [TYPED, 3]}, ["listings.1"]),
    ],
    ids=["missing", "not_a_list", "item_not_an_object"],
)
def test_batch_of_the_wrong_shape_is_422(client, body, fields):
    assert error_fields(client.post("/v1/quotes", json=body), 422) == fields


# --- /v1/appraisal -------------------------------------------------------------------------------


def appraise(client, listing: dict, asking) -> dict:
    response = client.post("/v1/appraisal", json={"listing": listing, "asking_price": asking})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def ranged(client) -> tuple[dict, dict]:
    """A listing whose range has room on both sides of its estimate, and its quote."""
    for body in VARIED:
        quote = client.post("/v1/quote", json=body).json()
        if 10 < quote["price_low"] < quote["price_estimate"] < quote["price_high"]:
            return body, quote
    pytest.fail("no listing with an open range on both sides")


def test_verdict_follows_the_range(client, ranged):
    body, quote = ranged
    low, estimate, high = quote["price_low"], quote["price_estimate"], quote["price_high"]
    cases = [
        (low - 1, "below_market"),
        (low, "fair"),
        (estimate, "fair"),
        (high, "fair"),
        (high + 1, "above_market"),
    ]
    for asking, verdict in cases:
        answer = appraise(client, body, asking)
        assert answer["verdict"] == verdict, asking
        assert answer["asking_price"] == asking
        assert answer["quote"] == quote
        assert answer["thresholds"] == {"below_market_under": 0.1, "above_market_over": 0.9}


def test_percentile_at_the_estimate_and_the_range_bounds(client, ranged):
    body, quote = ranged
    # The estimate is the monotone point model; the distribution around it is calibrated on
    # out-of-sample residuals, so its median sits near the estimate, not exactly on it.
    assert 0.25 < appraise(client, body, quote["price_estimate"])["percentile"] < 0.75
    assert abs(appraise(client, body, quote["price_low"])["percentile"] - 0.1) < 0.01
    assert abs(appraise(client, body, quote["price_high"])["percentile"] - 0.9) < 0.01
    assert appraise(client, body, quote["price_low"] - 1)["percentile"] < 0.1
    assert appraise(client, body, quote["price_high"] + 1)["percentile"] > 0.9


@CHECKED
@given(
    prices=st.lists(st.integers(1, 10**7), min_size=2, max_size=2, unique=True).map(sorted),
    which=st.integers(0, len(VARIED) - 1),
)
def test_percentile_rises_with_the_asking_price(client, prices, which):
    cheaper, dearer = (appraise(client, VARIED[which], price) for price in prices)
    assert cheaper["percentile"] <= dearer["percentile"]
    for answer in (cheaper, dearer):
        assert 0.0 <= answer["percentile"] <= 1.0
        tails = answer["thresholds"]
        verdict = answer["verdict"]
        # The verdict reads the range; the percentile the same distribution: they agree.
        if verdict == "below_market":
            assert answer["percentile"] <= tails["below_market_under"] + 1e-9
        elif verdict == "above_market":
            assert answer["percentile"] >= tails["above_market_over"] - 1e-9


@pytest.mark.parametrize("asking", ["¥3,800", "3800元", "￥3800", "0.38万", 3800, 3800.0, "3,800"])
def test_asking_price_spellings(client, asking):
    expected = appraise(client, TYPED, 3800)
    answer = appraise(client, TYPED, asking)
    assert answer["asking_price"] == 3800.0
    assert answer == expected


@pytest.mark.parametrize("asking", [0, -100, "-100", "0元", "abc", None, True, "1e400"])
def test_bad_asking_price_is_422_naming_it(client, asking):
    response = client.post("/v1/appraisal", json={"listing": TYPED, "asking_price": asking})
    assert error_fields(response, 422, "invalid_request") == ["asking_price"]


def test_appraisal_names_bad_listing_fields_under_listing(client):
    response = client.post(
        "/v1/appraisal", json={"listing": {**TYPED, "fans": -1}, "asking_price": 100}
    )
    assert error_fields(response, 422) == ["listing.fans"]
    response = client.post("/v1/appraisal", json={"listing": TYPED})
    assert error_fields(response, 422) == ["asking_price"]


@pytest.fixture(scope="module")
def crossing(valuer) -> dict:
    """A listing whose price_high equals its estimate (the high quantile model crossed below the
    point model), found by scanning the model; the session's model has many."""
    grid = pd.DataFrame(
        [
            {"fans": int(fans), "violations": v, "live_permission": lp, "verified": vf,
             "category": category}
            for fans in np.geomspace(10, 10**9, 600)
            for v in (False, True)
            for lp in (False, True)
            for vf in (False, True)
            for category in (*valuer.encoder.categories[:4], UNKNOWN)
        ]
    )  # fmt: skip
    prices = valuer.value_frame(grid)
    hits = grid[
        (prices.price_high == prices.price_estimate) & (prices.price_low < prices.price_estimate)
    ]
    if hits.empty:
        pytest.skip("this model's ranges never collapse onto the estimate")
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in hits.iloc[0].items()}


def test_price_far_above_a_collapsed_range_is_above_the_threshold(client, crossing):
    quote = client.post("/v1/quote", json=crossing).json()
    assert quote["price_high"] == quote["price_estimate"]
    answer = appraise(client, crossing, quote["price_high"] * 3)
    assert answer["verdict"] == "above_market"
    assert answer["percentile"] > answer["thresholds"]["above_market_over"]


# --- /v1/model, health ---------------------------------------------------------------------------


def test_model_card(client, trained, settings, sales_csv):
    response = client.get("/v1/model")
    assert response.status_code == 200, response.text
    card = response.json()
    bundle = json.loads((trained.bundle / "bundle.json").read_text())
    assert card["name"] == settings.model_name
    assert card["version"] == trained.model_version == registered_version(settings, "champion")
    assert card["alias"] == "champion"
    assert card["categories"] == bundle["categories"]
    assert card["interval"] == 0.8
    assert "model" in card["holdout_metrics"]
    assert any(name.startswith("baseline") for name in card["holdout_metrics"])
    assert card["holdout_metrics"] == trained.metrics
    assert card["data"]["sha256"] == hashlib.sha256(sales_csv.read_bytes()).hexdigest()
    assert card["data"]["rows"] == trained.rows - trained.rejected  # the sales it learned from
    # the gate's record on the version served, as `valuation train` said it
    assert card["promotion"] == {
        "decision": "promoted_with_warning" if trained.decision.warning else "promoted",
        "reasons": "; ".join(trained.decision.reasons),
    }


def test_health_and_readiness(client, trained):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "model": {"name": "kuaishou-account-price", "version": trained.model_version},
    }


def test_without_a_model_only_liveness_answers(modelless, tmp_path):
    assert modelless.get("/healthz").status_code == 200
    assert error_fields(modelless.get("/readyz"), 503, "no_model") == []
    requests = [
        ("post", "/v1/quote", TYPED),
        ("post", "/v1/quotes", {"listings": [TYPED]}),
        ("post", "/v1/appraisal", {"listing": TYPED, "asking_price": 3800}),
        ("get", "/v1/model", None),
    ]
    for method, path, body in requests:
        response = getattr(modelless, method)(path, **({"json": body} if body else {}))
        error_fields(response, 503, "no_model")
        assert "train" in response.json()["error"]["message"]
    assert not (tmp_path / "mlflow.db").exists()  # looking for a model made no store
    assert not any(name == "valuation_model_info" for name, _ in samples(modelless))


# --- /metrics ------------------------------------------------------------------------------------


def test_request_metrics_by_endpoint_and_status(client):
    before = samples(client)
    client.post("/v1/quote", json=TYPED)
    client.post("/v1/quote", json=TYPED)
    client.post("/v1/quote", json={**TYPED, "fans": "lots"})
    after = samples(client)

    def grew(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    quote = {"endpoint": "/v1/quote", "method": "POST"}
    assert grew("valuation_requests_total", **quote, status="200") == 2
    assert grew("valuation_requests_total", **quote, status="422") == 1
    assert grew("valuation_request_seconds_count", **quote, status="200") == 2
    assert grew("valuation_request_seconds_count", **quote, status="422") == 1
    assert grew("valuation_request_seconds_bucket", **quote, status="200", le="+Inf") == 2
    assert 0 < grew("valuation_request_seconds_sum", **quote, status="200") < 10
    assert grew("valuation_quotes_total", endpoint="quote") == 2  # the 422 valued nothing


def test_quote_counter_counts_listings(client):
    before = samples(client)
    client.post("/v1/quotes", json={"listings": VARIED[:3]})
    middle = samples(client)
    client.post("/v1/quotes", json={"listings": [*VARIED[:3], {"fans": "lots"}]})
    client.post("/v1/appraisal", json={"listing": TYPED, "asking_price": 3800})
    after = samples(client)
    assert (
        sample(middle, "valuation_quotes_total", endpoint="quotes")
        - sample(before, "valuation_quotes_total", endpoint="quotes")
        == 3
    )
    assert (
        sample(after, "valuation_quotes_total", endpoint="quotes")
        - sample(middle, "valuation_quotes_total", endpoint="quotes")
        == 3
    )
    assert (
        sample(after, "valuation_quotes_total", endpoint="appraisal")
        - sample(middle, "valuation_quotes_total", endpoint="appraisal")
        == 1
    )


def test_model_info_names_the_loaded_version(client, trained):
    snapshot = samples(client)
    loaded = [labels for name, labels in snapshot if name == "valuation_model_info"]
    assert loaded == [(("name", "kuaishou-account-price"), ("version", trained.model_version))]
    assert snapshot[("valuation_model_info", loaded[0])] == 1


def test_unknown_paths_share_one_series(client):
    before = samples(client)
    for path in ("/nope/1", "/nope/2", "/v2/quote", "/admin/secret-9f3a"):
        assert client.get(path).status_code == 404
    after = samples(client)
    unmatched = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    assert (
        sample(after, "valuation_requests_total", **unmatched)
        - sample(before, "valuation_requests_total", **unmatched)
        == 4
    )
    endpoints = {dict(labels).get("endpoint") for _, labels in after}
    assert not any(e and ("nope" in e or "secret" in e or e == "/v2/quote") for e in endpoints)


# --- routing errors, OpenAPI, docs ---------------------------------------------------------------


def test_unknown_path_is_404_in_the_error_shape(client):
    assert error_fields(client.get("/v1/nothing-here"), 404, "not_found") == []
    assert error_fields(client.post("/v1/quote/extra", json=TYPED), 404, "not_found") == []


@pytest.mark.parametrize(
    "method, path", [("get", "/v1/quote"), ("delete", "/v1/model"), ("put", "/v1/quotes")]
)
def test_wrong_method_is_405_in_the_error_shape(client, method, path):
    assert error_fields(getattr(client, method)(path), 405, "method_not_allowed") == []


def resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_openapi_documents_every_endpoint_with_working_examples(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/quote", "/v1/quotes", "/v1/appraisal", "/v1/model"} <= set(spec["paths"])
    model_answer = spec["paths"]["/v1/model"]["get"]["responses"]["200"]
    assert model_answer["content"]["application/json"]["schema"]["$ref"].endswith("/ModelInfo")
    for path in ("/v1/quote", "/v1/quotes", "/v1/appraisal"):
        operation = spec["paths"][path]["post"]
        assert {"200", "422", "503"} <= set(operation["responses"])
        schema = resolve(spec, operation["requestBody"]["content"]["application/json"]["schema"])
        if "examples" in schema:
            example = schema["examples"][0]
        else:  # the example sits on the one property, the batch's list of listings
            (name, prop), *_ = schema["properties"].items()
            example = {name: prop["examples"][0]}
        response = client.post(path, json=example)
        assert response.status_code == 200, (path, response.text)
        if path == "/v1/quotes":
            assert response.json()["failed"] == 0 and response.json()["quoted"] > 0


def test_openapi_fans_accepts_integer_or_string(client):
    spec = client.get("/openapi.json").json()
    listing = spec["components"]["schemas"]["ListingIn"]
    assert {option["type"] for option in listing["properties"]["fans"]["anyOf"]} == {
        "integer",
        "string",
    }
    assert set(listing["required"]) == set(FIELD_NAMES)
    assert listing["additionalProperties"] is False


def test_docs_page(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger" in response.text.lower() and "/openapi.json" in response.text


def test_the_seed_pages_double_unit_prices_as_the_number(client):
    """13.13WW, as the marketplace page this project starts from renders its cards."""
    listing = {**MARKETPLACE}
    spelled = client.post("/v1/quote", json={**listing, "fans": "13.13WW"})
    number = client.post("/v1/quote", json={**listing, "fans": 131_300})
    assert spelled.status_code == number.status_code == 200
    assert spelled.json()["price_estimate"] == number.json()["price_estimate"]
    mixed = client.post("/v1/quote", json={**listing, "fans": "13.13W万"})
    assert mixed.status_code == 422


@pytest.mark.parametrize(("times", "rating"), [(0.3, "great"), (1.0, "fair"), (3.0, "overpriced")])
def test_deal_ratings_at_a_third_the_estimate_and_three_times_it(client, times, rating):
    estimate = client.post("/v1/quote", json=MARKETPLACE).json()["price_estimate"]
    answer = client.post(
        "/v1/appraisal", json={"listing": MARKETPLACE, "asking_price": estimate * times}
    ).json()
    assert answer["deal_rating"] == rating
    thresholds = answer["deal_ratings"]
    assert list(thresholds) == ["great", "good", "fair", "high", "overpriced"]
    below = [r for r, upto in thresholds.items() if answer["percentile"] < upto]
    assert below[0] == rating  # the rating is the first whose threshold is above the percentile


def test_every_advice_entry_is_the_quote_of_the_changed_listing(client):
    answer = client.post("/v1/quote", params={"advice": "true"}, json=MARKETPLACE).json()
    plain = client.post("/v1/quote", json=MARKETPLACE).json()
    assert "advice" not in plain
    # 有违规, 未开通, 已认证: clearing the violations and opening live are the changes left.
    assert [(a["feature"], a["to"]) for a in answer["advice"]] == [
        ("violations", False),
        ("live_permission", True),
    ]
    for entry in answer["advice"]:
        changed = client.post("/v1/quote", json={**MARKETPLACE, entry["feature"]: entry["to"]})
        quoted = changed.json()
        assert entry["price_estimate"] == quoted["price_estimate"]
        assert (entry["price_low"], entry["price_high"]) == (
            quoted["price_low"],
            quoted["price_high"],
        )
        assert entry["change"] == quoted["price_estimate"] - answer["price_estimate"]
        assert entry["change"] >= 0  # market logic: these changes never lower the price


CARD = "13.13WW\n有违规\n未开通\n已认证\n粉丝数量\n有无违规\n直播权限\n认证状态"
AS_NUMBERS = {
    "fans": 131_300,
    "violations": True,
    "live_permission": False,
    "verified": True,
    "category": "自媒体",
}


def test_a_card_as_the_page_gives_it_prices_as_the_listing_in_numbers(client):
    card = client.post("/v1/quote/card", json={"text": CARD, "category": "自媒体"})
    assert card.status_code == 200, card.text
    plain = client.post("/v1/quote", json=AS_NUMBERS).json()
    assert card.json()["listing"] == AS_NUMBERS
    assert card.json()["price_estimate"] == plain["price_estimate"]
    assert (card.json()["price_low"], card.json()["price_high"]) == (
        plain["price_low"],
        plain["price_high"],
    )


def test_a_card_of_label_value_lines_in_any_order_with_its_category(client):
    text = "认证状态：已认证\n类目: 自媒体\n粉丝数量: 13.13W\n直播权限: 未开通\n有无违规: 有违规"
    answer = client.post("/v1/quote/card", json={"text": text}).json()
    assert answer["listing"] == AS_NUMBERS


def test_what_a_card_does_not_give_is_a_422_that_names_it(client):
    missing = client.post("/v1/quote/card", json={"text": CARD})  # no category anywhere
    assert missing.status_code == 422
    assert [f["field"] for f in missing.json()["error"]["fields"]] == ["category"]
    uneven = client.post("/v1/quote/card", json={"text": "13.13WW\n有违规\n粉丝数量"})
    assert uneven.status_code == 422
    assert uneven.json()["error"]["fields"][0]["field"] == "text"


def test_each_quote_carries_its_confidence_grade(client):
    from valuation.quoting import confidence

    for level in (0.5, 0.8, 0.95):
        answer = client.post("/v1/quote", params={"level": level}, json=MARKETPLACE).json()
        assert answer["confidence"] == confidence(
            answer["price_low"], answer["price_high"], answer["interval"]
        )
    batch = client.post("/v1/quotes", json={"listings": [MARKETPLACE]}).json()
    assert batch["results"][0]["confidence"] in {"high", "medium", "low"}


@pytest.mark.parametrize(
    ("spread", "grade"), [(0.10, "high"), (0.149, "high"), (0.20, "medium"), (0.31, "low")]
)
@pytest.mark.parametrize("level", [0.5, 0.8, 0.95])
def test_confidence_grades_follow_the_documented_thresholds_at_any_level(spread, grade, level):
    from statistics import NormalDist

    from valuation.quoting import confidence

    width = 2 * NormalDist().inv_cdf((1 + level) / 2) * spread
    assert confidence(1000.0, 1000.0 * np.exp(width), level) == grade


def test_the_model_says_where_it_is_less_sure(client, trained):
    by = client.get("/v1/model").json()["holdout_by"]
    assert set(by) == {"fans_band", "category"}
    bands, categories = by["fans_band"], by["category"]
    assert sum(group["sales"] for group in bands.values()) == sum(
        group["sales"] for group in categories.values()
    )
    assert all(0 <= group["mdape"] < 5 for group in (*bands.values(), *categories.values()))
    assert all(
        group["sales"] >= 30 for name, group in categories.items() if not name.startswith("(")
    )


def test_a_catalogue_is_rated_at_once_with_per_item_errors(client):
    estimate = client.post("/v1/quote", json=MARKETPLACE).json()["price_estimate"]
    catalogue = [
        {"listing": MARKETPLACE, "asking_price": estimate * 0.3},
        {"listing": {**MARKETPLACE, "fans": "很多"}, "asking_price": 100},
        {"listing": MARKETPLACE, "asking_price": estimate * 3},
    ]
    answer = client.post("/v1/appraisals", json={"appraisals": catalogue})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["appraised"], body["failed"]) == (2, 1)
    first, bad, last = body["results"]
    assert first["deal_rating"] == "great" and last["deal_rating"] == "overpriced"
    assert bad["error"] == "invalid_listing" and bad["fields"][0]["field"] == "listing.fans"
    single = client.post("/v1/appraisal", json=catalogue[2]).json()
    assert last["percentile"] == single["percentile"]
    assert last["quote"]["price_estimate"] == single["quote"]["price_estimate"]
