"""Tests of the valuer on a small model trained for the session: bundles, ranges, market logic, pricing."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import FrozenInstanceError, asdict, replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.simulator import CATEGORY_PREMIUM
from valuation.card import BUNDLE_FORMAT, ModelCard
from valuation.encoding import FEATURE_NAMES
from valuation.listing import Listing
from valuation.loading import load_listings
from valuation.pricing import PRICE_COLUMNS, price_chunk, price_rows
from valuation.schema import FLAGS
from valuation.valuer import BOOSTERS, DEFAULT_LEVEL, Valuer

UNKNOWN = "从没见过的类目"
MARKET_LOGIC = settings(max_examples=60, deadline=None)

listings = st.builds(
    Listing,
    fans=st.one_of(st.integers(0, 10**10), st.integers(100, 3_000_000)),
    violations=st.booleans(),
    live_permission=st.booleans(),
    verified=st.booleans(),
    category=st.sampled_from([*CATEGORY_PREMIUM, UNKNOWN]),
)


def frame_of(*batch: Listing) -> pd.DataFrame:
    return pd.DataFrame([asdict(listing) for listing in batch])


SAMPLE = [
    Listing(131300, True, False, True, "自媒体"),
    Listing(800, False, True, False, "美食"),
    Listing(2_500_000, False, True, True, "游戏"),
    Listing(45_000, True, True, False, UNKNOWN),
]


def test_bundle_round_trip(valuer, tmp_path):
    copy = Valuer.load(valuer.save(tmp_path / "copy"))
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == sorted(
        ["bundle.json", "comparables.parquet", *(f"{name}.txt" for name in BOOSTERS)]
    )
    assert copy.encoder == valuer.encoder
    assert copy.card == valuer.card
    pd.testing.assert_frame_equal(
        copy.value_frame(frame_of(*SAMPLE)), valuer.value_frame(frame_of(*SAMPLE))
    )


def test_the_card_is_typed_data_that_json_carries_whole(valuer, tmp_path):
    card = valuer.card
    assert isinstance(card, ModelCard) and card.price_curve is not None
    again = ModelCard.from_json(json.loads(json.dumps(card.as_json(), ensure_ascii=False)))
    assert again == card
    # bundle.json: the card, plus what the bundle adds; a key this code does not know is left aside
    written = json.loads((valuer.save(tmp_path / "b") / "bundle.json").read_text())
    assert set(written) == {
        *card.as_json(),
        "format",
        "features",
        "monotone",
        "categories",
        "lightgbm",
    }
    assert written["format"] == BUNDLE_FORMAT
    assert ModelCard.from_json({**written, "from_a_later_release": 1}) == card
    with pytest.raises(FrozenInstanceError):
        card.training_rows = 0


def test_trained_prices_are_plausible(valuer):
    prices = valuer.value_frame(frame_of(*SAMPLE))
    assert (prices["price_estimate"] > 0).all()
    # 2.5M fans and live permission is worth more than 800 fans, whatever else differs.
    assert prices["price_estimate"].iloc[2] > prices["price_estimate"].iloc[1]


@pytest.mark.parametrize(
    "change",
    [
        lambda card: card.update(features=card["features"][::-1]),
        lambda card: card.update(features=[*card["features"], "region"]),
        lambda card: card.update(format=card["format"] + 1),
    ],
    ids=["reordered", "extra-feature", "format"],
)
def test_load_refuses_a_bundle_for_other_features(trained, tmp_path, change):
    bundle = shutil.copytree(trained.bundle, tmp_path / "bundle")
    card = json.loads((bundle / "bundle.json").read_text())
    change(card)
    (bundle / "bundle.json").write_text(json.dumps(card, ensure_ascii=False))
    with pytest.raises(ValueError, match="does not match this code"):
        Valuer.load(bundle)


def test_the_session_model_starts_from_a_price_curve(valuer):
    """The default candidate: its trees start from a smooth curve in fans plus each category's
    offset, which the bundle keeps as data."""
    curve = valuer.curve
    assert curve is not None and valuer.card.price_curve == curve
    assert len(curve.log10_fans) == len(curve.level) > 2
    assert np.all(np.diff(curve.log10_fans) > 0) and np.all(np.diff(curve.level) >= 0)
    assert curve.level[-1] > curve.level[0]  # more fans, a higher price
    low, high = 10 ** curve.log10_fans[0], 10 ** curve.log10_fans[-1]
    # Flat below the fans it was fitted on; past them, a decade at the slope of its top.
    assert curve.fans_part(low / 10) == curve.fans_part(low)
    assert curve.beyond_slope > 0
    assert curve.fans_part(high * 10) == pytest.approx(curve.fans_part(high) + curve.beyond_slope)
    assert curve.fans_part(high * 100) == curve.fans_part(high * 20)
    # A bundle written before the slope reads as flat past the grid, as it priced then.
    card = {key: value for key, value in curve.as_card().items() if key != "beyond_slope"}
    old = type(curve).from_card(card)
    assert old.beyond_slope == 0.0 and old.fans_part(high * 10) == old.fans_part(high)
    # One offset per category of the vocabulary; an unknown one is the average sale's (0).
    assert len(curve.category) == len(valuer.encoder.categories)
    assert curve.category_part([valuer.encoder.unknown_code]) == 0.0
    # The simulated premiums show through: 美食 (food) above 情感 (relationships).
    food, feelings = (valuer.encoder.categories.index(name) for name in ("美食", "情感"))
    assert curve.category[food] > curve.category[feelings]
    # Each flag's part, on the grid, of its market sign: a violation lowers the price (the
    # simulated discount shows through), live streaming and being verified raise it.
    violations, live, verified = (np.asarray(part) for part in curve.flags)
    assert len(violations) == len(curve.log10_fans)
    assert np.all(violations <= 0) and violations.mean() < -0.1
    assert np.all(live >= 0) and np.all(verified >= 0)
    # A bundle written before the flags' parts prices without them.
    card = {key: value for key, value in curve.as_card().items() if key != "flags"}
    card["reference"] = card["reference"][:2]
    assert type(curve).from_card(card).flags == ()
    # A bundle written before the categories' slopes (format 4) prices without them, as it did.
    card = {k: v for k, v in curve.as_card().items() if k not in ("category_slope", "slope_centre")}
    old = type(curve).from_card(card)
    assert old.category_slope == () and old == curve


@MARKET_LOGIC
@given(
    fans=st.one_of(st.integers(0, 10**10), st.floats(0, 1e7, allow_nan=False)),
    code=st.integers(0, 40),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_the_curve_prices_one_row_as_it_prices_a_matrix(valuer, fans, code, flags):
    """The quote path reads the curve in plain Python, batches with arrays: to the same bit."""
    curve = valuer.curve
    row = np.zeros((1, len(FEATURE_NAMES)))
    row[0, FEATURE_NAMES.index("fans")], row[0, FEATURE_NAMES.index("category")] = fans, code
    for flag, set_ in zip(FLAGS, flags, strict=True):
        row[0, FEATURE_NAMES.index(flag.name)] = set_
    assert curve.one(row[0]) == curve(row)[0]
    if code >= len(curve.category):  # the unknown code (and beyond): the average category
        assert curve.category_part([code])[0] == 0.0


def test_a_format_2_bundle_prices_with_its_booster_alone(valuer, tmp_path):
    """Bundles written before the fans curve (format 2, no curve) still load, and price as they
    did: the booster's score is the whole estimate."""
    bundle = valuer.save(tmp_path / "old")
    card = json.loads((bundle / "bundle.json").read_text())
    card["format"] = 2
    del card["price_curve"]
    (bundle / "bundle.json").write_text(json.dumps(card, ensure_ascii=False))
    old = Valuer.load(bundle)
    assert old.curve is None
    frame = frame_of(*SAMPLE)
    raw = old.boosters["point"].predict(old.encoder.matrix(frame))
    np.testing.assert_array_equal(
        old.value_frame(frame)["price_estimate"], np.maximum(np.round(np.exp(raw)), 1.0)
    )
    # The curve is part of the estimate: dropped, the prices move.
    assert not old.value_frame(frame).equals(valuer.value_frame(frame))


@MARKET_LOGIC
@given(listings)
def test_range_holds_the_estimate(valuer, listing):
    valuation = valuer.value(listing)
    assert 0 < valuation.price_low <= valuation.price_estimate <= valuation.price_high
    assert valuation.interval == DEFAULT_LEVEL


@settings(max_examples=25, deadline=None)
@given(st.lists(listings, min_size=1, max_size=6))
def test_value_and_value_frame_agree(valuer, batch):
    frame = valuer.value_frame(frame_of(*batch))
    for i, listing in enumerate(batch):
        one = valuer.value(listing)
        assert [one.price_estimate, one.price_low, one.price_high] == frame.iloc[i].tolist()


def test_unknown_category_is_valued_with_a_note(valuer):
    assert not valuer.encoder.knows(UNKNOWN)
    valuation = valuer.value(Listing(45_000, False, True, False, UNKNOWN))
    assert math.isfinite(valuation.price_estimate) and valuation.price_estimate > 0
    assert valuation.known_category is False
    assert valuation.notes and "unknown" in valuation.notes[0]
    known = valuer.value(Listing(45_000, False, True, False, "自媒体"))
    assert known.known_category is True and known.notes == []


def test_fans_past_every_sale_learned_from_are_valued_with_a_note(valuer):
    """The curve's grid ends at the most fans among the training sales; past it only the curve
    rises (for a decade, at its top's slope), and the quote says the estimate is less sure."""
    top = valuer.top_fans
    assert top == round(10 ** valuer.curve.log10_fans[-1]) and top > 10_000
    at_top = valuer.value(Listing(top, False, True, False, "自媒体"))
    assert at_top.beyond_fans is None and at_top.notes == []
    far = valuer.value(Listing(top * 10, False, True, False, "自媒体"))
    assert far.beyond_fans == top
    assert len(far.notes) == 1 and f"{top:,}" in far.notes[0]
    # The curve carries the price past the grid at its top's slope; the trees are flat there.
    rise = math.exp(valuer.curve.beyond_slope)
    assert far.price_estimate == pytest.approx(at_top.price_estimate * rise, rel=0.01)
    both = valuer.value(Listing(top * 10, False, True, False, UNKNOWN))
    assert len(both.notes) == 2


@MARKET_LOGIC
@given(listings, st.integers(0, 10**9))
def test_more_fans_never_lowers_the_estimate(valuer, listing, more):
    bigger = replace(listing, fans=listing.fans + more)
    assert valuer.value(bigger).price_estimate >= valuer.value(listing).price_estimate


@MARKET_LOGIC
@given(listings)
def test_a_violation_never_raises_the_estimate(valuer, listing):
    clean = valuer.value(replace(listing, violations=False)).price_estimate
    assert valuer.value(replace(listing, violations=True)).price_estimate <= clean


@MARKET_LOGIC
@given(listings, st.sampled_from(["live_permission", "verified"]))
def test_live_permission_and_verification_never_lower_the_estimate(valuer, listing, flag):
    without = valuer.value(replace(listing, **{flag: False})).price_estimate
    assert valuer.value(replace(listing, **{flag: True})).price_estimate >= without


ROWS = pd.DataFrame(
    {
        "粉丝数量": ["13.13W", "约10万", "800", 2_500_000, "4.5万"],
        "有无违规": ["有违规", "无违规", "no", False, "不详"],
        "直播权限": ["未开通", "已开通", "yes", True, "已开通"],
        "认证状态": ["已认证", "未认证", "0", True, "未认证"],
        "类目": ["自媒体", "美食", UNKNOWN, "游戏", "搞笑"],
    },
    index=[40, 10, 30, 20, 0],  # not in order: answers follow the rows' positions
)


def test_price_rows_answers_every_row_in_order(valuer):
    priced = price_rows(valuer, ROWS)
    assert list(priced.columns) == [*PRICE_COLUMNS, "known_category", "error"]
    assert len(priced) == len(ROWS)
    assert priced.index.tolist() == list(range(len(ROWS)))

    errors = priced["error"].tolist()
    assert [e is None for e in errors] == [True, False, True, True, False]
    assert errors[1].startswith("粉丝数量: ") and "约10万" in errors[1]
    assert errors[4].startswith("有无违规: ") and "不详" in errors[4]
    assert priced.loc[[1, 4], PRICE_COLUMNS].isna().all().all()

    for position in (0, 2, 3):
        expected = valuer.value(Listing.parse(ROWS.iloc[position].to_dict()))
        row = priced.iloc[position]
        assert row["price_estimate"] == expected.price_estimate
        assert row["price_low"] == expected.price_low
        assert row["price_high"] == expected.price_high
        assert bool(row["known_category"]) is expected.known_category
    assert bool(priced["known_category"].iloc[2]) is False


def test_price_rows_order_follows_the_input(valuer):
    forward = price_rows(valuer, ROWS)
    backward = price_rows(valuer, ROWS.iloc[::-1])
    pd.testing.assert_frame_equal(
        backward.iloc[::-1].reset_index(drop=True), forward, check_dtype=False
    )


def test_price_rows_with_every_row_unreadable(valuer):
    priced = price_rows(valuer, ROWS.iloc[[1, 4]])
    assert len(priced) == 2
    assert priced["error"].notna().all()
    assert priced[PRICE_COLUMNS].isna().all().all()


def test_price_chunk_keeps_the_original_columns(valuer, tmp_path):
    path = tmp_path / "listings.csv"
    path.write_text(
        "备注,粉丝数量,有无违规,直播权限,认证状态,类目\n"
        "急售,13.13W,有违规,未开通,已认证,自媒体\n"
        "坏行,约10万,无违规,已开通,未认证,美食\n"
        ",800,无违规,已开通,未认证,美食\n",
        encoding="utf-8",
    )
    loaded = load_listings(path, require_price=False)
    versioned = Valuer(valuer.boosters, valuer.encoder, valuer.card, version="7")
    priced, rejects = price_chunk(versioned, loaded.raw, first_line=2)
    assert rejects["line"].tolist() == [3]

    dated = ["as_of"] if valuer.market_date else []  # the date valued at, for a dated model
    assert list(priced.columns) == [*loaded.raw.columns, *PRICE_COLUMNS, "model_version", *dated]
    assert len(priced) == 2  # the unreadable row went to the rejects
    assert priced["备注"].tolist() == ["急售", ""]
    assert priced["粉丝数量"].tolist() == ["13.13W", "800"]
    expected = valuer.value_frame(loaded.listings)
    np.testing.assert_array_equal(priced[PRICE_COLUMNS].to_numpy(), expected.to_numpy())
    assert priced["model_version"].tolist() == ["7", "7"]


def test_a_quote_as_of_an_earlier_date_moves_by_the_listing_s_part_of_a_moving_shape(valuer):
    """Where the market's shape moved (large accounts gaining 0.06 log a year per decade of
    fans), a quote as of a year before the market date values a 100万 account 0.12 log lower,
    against a 1万 one, than today's quotes do; one quote, a batch and a frame agree."""
    import datetime as dt

    from valuation.reasons import explain

    shape = {
        "centres": {"fans": 4.0, "violations": 0.0, "live_permission": 0.0, "verified": 0.0},
        "per_year": {"fans": -0.06, "violations": 0.0, "live_permission": 0.0, "verified": 0.0},
    }
    market = replace(valuer.market, shape=shape)
    moving = Valuer(valuer.boosters, valuer.encoder, replace(valuer.card, market=market))
    year_ago = market.market_date - dt.timedelta(days=365)
    if year_ago < market.start:
        pytest.skip("the session's sales span less than a year")
    fields = {"violations": False, "live_permission": False, "verified": False, "category": "美食"}
    small, large = (Listing.parse({**fields, "fans": fans}) for fans in (10_000, 1_000_000))

    def moved(listing: Listing) -> float:
        then = moving.value(listing, as_of=year_ago).price_estimate
        return math.log(then / moving.value(listing).price_estimate)

    gap = moved(large) - moved(small)
    assert gap == pytest.approx(-0.12 * 365 / 365.25, abs=0.005)  # whole yuan: rounding only
    # at the shape's centre (1万 fans, no flags) the listing moves by its category's level alone
    plain = valuer.value(small, as_of=year_ago).price_estimate / valuer.value(small).price_estimate
    assert moved(small) == pytest.approx(math.log(plain), abs=0.002)
    batch = moving.value_many([small, large], as_of=year_ago)
    assert [v.price_estimate for v in batch] == [
        moving.value(listing, as_of=year_ago).price_estimate for listing in (small, large)
    ]
    frame = pd.DataFrame([{**fields, "fans": 10_000}, {**fields, "fans": 1_000_000}])
    priced = moving.value_frame(frame, as_of=year_ago)
    assert priced["price_estimate"].tolist() == [v.price_estimate for v in batch]
    estimate = moving.value(large, as_of=year_ago).price_estimate
    steps = explain(moving, large, estimate, as_of=year_ago).steps
    assert math.prod(step.factor for step in steps if step.feature == "as_of") == pytest.approx(
        math.exp(float(market.level(["美食"], year_ago)[0]) - 0.06 * 2 * 365 / 365.25), rel=1e-6
    )
