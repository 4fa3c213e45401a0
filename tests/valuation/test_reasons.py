"""The reasons of a valuation: a waterfall from the reference price, one step per feature, built on
LightGBM's exact per-feature contributions to the log estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.simulator import CATEGORY_PREMIUM
from valuation import reasons
from valuation.encoding import FEATURE_NAMES
from valuation.listing import Listing
from valuation.schema import FLAGS
from valuation.valuer import FANS_BANDS

UNKNOWN = "从没见过的类目"
EXAMPLES = settings(max_examples=50, deadline=None)
ORDER = ["fans", "category", "violations", "live_permission", "verified"]

listings = st.builds(
    Listing,
    fans=st.one_of(
        st.integers(0, 10**10),
        st.integers(100, 3_000_000),
        st.sampled_from([b + d for b in FANS_BANDS for d in (-1, 0, 1)]),
    ),
    violations=st.booleans(),
    live_permission=st.booleans(),
    verified=st.booleans(),
    category=st.sampled_from([*CATEGORY_PREMIUM, UNKNOWN]),
)


def test_order_is_fans_category_then_the_flags():
    assert list(reasons.ORDER) == ORDER
    assert sorted(ORDER) == sorted(FEATURE_NAMES)


@EXAMPLES
@given(listings)
def test_reference_plus_steps_is_the_estimate(valuer, listing):
    estimate = valuer.value(listing).price_estimate
    explained = reasons.explain(valuer, listing, estimate)
    assert explained.price_estimate == estimate
    assert explained.reference_price > 0
    assert explained.reference_price + sum(step.cny for step in explained.steps) == pytest.approx(
        estimate, abs=1e-6
    )
    assert abs(explained.check()) < 1e-6


@EXAMPLES
@given(listings)
def test_steps_name_each_feature_in_order_with_the_listings_value(valuer, listing):
    explained = reasons.explain(valuer, listing, valuer.value(listing).price_estimate)
    assert [step.feature for step in explained.steps] == ORDER
    for step in explained.steps:
        value = getattr(listing, step.feature)
        assert step.value == value
        assert type(step.value) is type(value)


@EXAMPLES
@given(listings)
def test_factors_and_percents_agree_and_multiply_to_the_unrounded_estimate(valuer, listing):
    explained = reasons.explain(valuer, listing, valuer.value(listing).price_estimate)
    contributions = valuer.contributions(listing)
    for step in explained.steps:
        assert step.factor > 0
        assert step.factor == pytest.approx(1 + step.percent / 100, rel=1e-12, abs=1e-12)
        assert step.factor == pytest.approx(
            math.exp(contributions[FEATURE_NAMES.index(step.feature)]), rel=1e-12
        )
    assert explained.reference_price == pytest.approx(math.exp(contributions[-1]), rel=1e-12)
    product = explained.reference_price * math.prod(step.factor for step in explained.steps)
    unrounded = math.exp(contributions.sum())
    assert product == pytest.approx(unrounded, rel=1e-6)
    # Every step but the last is its factor's share of the running price; the last also absorbs
    # the rounding of the estimate to whole yuan (at most half a yuan).
    running = explained.reference_price
    for step in explained.steps[:-1]:
        assert step.cny == pytest.approx(running * (step.factor - 1), rel=1e-9, abs=1e-9)
        running *= step.factor
    last = explained.steps[-1]
    assert abs(last.cny - running * (last.factor - 1)) <= 0.5 + 1e-6


@EXAMPLES
@given(listings)
def test_contributions_sum_to_the_point_models_raw_prediction(valuer, listing):
    contributions = valuer.contributions(listing)
    assert contributions.shape == (len(FEATURE_NAMES) + 1,)
    row = valuer.encoder.row(listing)
    raw = valuer.boosters["point"].predict(row)[0]
    if valuer.curve is not None:  # the point model's trees start from the price curve
        raw += float(valuer.curve(row)[0])
    assert contributions.sum() == pytest.approx(raw, abs=1e-9)
    valuation = valuer.value(listing)
    assert valuation.distribution.center == pytest.approx(raw, abs=1e-9)
    assert valuation.price_estimate == round(math.exp(raw))


@EXAMPLES
@given(listings)
def test_fast_path_contributions_equal_pred_contrib(valuer, listing):
    row = valuer.encoder.row(listing)
    expected = valuer.boosters["point"].predict(row, pred_contrib=True)[0]
    if valuer.curve is not None:  # the curve's parts: their distances from their means, the means
        curve = valuer.curve
        expected[FEATURE_NAMES.index("fans")] += curve.fans_part(listing.fans) - curve.reference[0]
        code = row[0, FEATURE_NAMES.index("category")]
        expected[FEATURE_NAMES.index("category")] += (
            curve.category_part([code])[0] - curve.reference[1]
        )
        for flag, part, mean in zip(
            FLAGS, curve.flag_parts(listing.fans), curve.reference[2:], strict=True
        ):
            column = FEATURE_NAMES.index(flag.name)
            expected[column] += part * row[0, column] - mean
        expected[-1] += sum(curve.reference)
    np.testing.assert_allclose(valuer.contributions(listing), expected, rtol=0, atol=1e-12)


def test_contributions_are_a_copy_not_the_scoring_buffer(valuer):
    small = Listing(800, False, True, False, "美食")
    large = Listing(2_500_000, True, False, True, "游戏")
    first = valuer.contributions(small)
    kept = first.copy()
    valuer.contributions(large)
    np.testing.assert_array_equal(first, kept)


def test_explain_reads_the_estimate_it_is_given(valuer):
    listing = Listing(131_300, True, False, True, "自媒体")
    estimate = valuer.value(listing).price_estimate
    shown = reasons.explain(valuer, listing, estimate)
    moved = reasons.explain(valuer, listing, estimate + 3)
    assert moved.reference_price == shown.reference_price
    assert [s.cny for s in moved.steps[:-1]] == [s.cny for s in shown.steps[:-1]]
    assert moved.steps[-1].cny == pytest.approx(shown.steps[-1].cny + 3, abs=1e-9)
    assert abs(moved.check()) < 1e-6
