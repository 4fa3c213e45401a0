"""The price distribution behind every range and percentile: levels, the Mondrian bands by fans, and
the conformal residual grid it is read from."""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from data.simulator import CATEGORY_PREMIUM
from training.steps import MIN_BAND_ROWS, RESIDUAL_P, _band_rows, conformal_quantiles
from valuation.listing import Listing
from valuation.valuer import (
    DEFAULT_LEVEL,
    FANS_BANDS,
    MAX_LEVEL,
    MIN_LEVEL,
    MIN_SCALE,
    Valuer,
    check_level,
    fans_band,
)

UNKNOWN = "从没见过的类目"
LEVELS = [0.5, 0.8, 0.9, 0.95]
EXAMPLES = settings(max_examples=50, deadline=None)
TOLERANCE = 0.02 + 1e-9  # the grid's resolution; + float slack (0.005 vs 0.025 is exactly 0.02)
BOUNDARY_FANS = [b + d for b in FANS_BANDS for d in (-1, 0, 1)]
N_BANDS = len(FANS_BANDS) + 1

listings = st.builds(
    Listing,
    fans=st.one_of(
        st.integers(0, 10**10), st.integers(100, 3_000_000), st.sampled_from(BOUNDARY_FANS)
    ),
    violations=st.booleans(),
    live_permission=st.booleans(),
    verified=st.booleans(),
    category=st.sampled_from([*CATEGORY_PREMIUM, UNKNOWN]),
)
levels = st.floats(MIN_LEVEL, MAX_LEVEL, allow_nan=False)


# --- levels --------------------------------------------------------------------------------------


@EXAMPLES
@given(listings)
def test_range_widens_with_the_level(valuer, listing):
    valuations = [valuer.value(listing, level) for level in LEVELS]
    for narrower, wider in zip(valuations, valuations[1:]):
        assert wider.price_low <= narrower.price_low
        assert wider.price_high >= narrower.price_high
        assert wider.price_estimate == narrower.price_estimate
    assert [v.interval for v in valuations] == LEVELS


@EXAMPLES
@given(listings, levels, levels)
def test_range_widens_with_any_higher_level(valuer, listing, a, b):
    lower, higher = sorted((a, b))
    narrow, wide = valuer.value(listing, lower), valuer.value(listing, higher)
    assert wide.price_low <= narrow.price_low <= narrow.price_high <= wide.price_high


@EXAMPLES
@given(listings, levels)
def test_estimate_lies_in_the_range_at_every_level(valuer, listing, level):
    valuation = valuer.value(listing, level)
    assert 0 <= valuation.price_low <= valuation.price_estimate <= valuation.price_high
    assert valuation.price_estimate > 0
    assert valuation.interval == level
    for price in (valuation.price_estimate, valuation.price_low, valuation.price_high):
        assert price == int(price)  # whole yuan


@pytest.mark.parametrize("level", [0.49, 0.96, 0.0, 1.0, -0.8])
def test_check_level_rejects_levels_outside_the_bounds(valuer, level):
    with pytest.raises(ValueError, match="between 0.5 and 0.95"):
        check_level(level)
    with pytest.raises(ValueError):
        valuer.value(Listing(10_000, False, True, False, "美食"), level)
    with pytest.raises(ValueError):
        valuer.value_frame(frame_of(Listing(10_000, False, True, False, "美食")), level)


@pytest.mark.parametrize("level", [MIN_LEVEL, 0.8, MAX_LEVEL])
def test_check_level_accepts_levels_within_the_bounds(level):
    assert check_level(level) == level


def frame_of(*batch: Listing) -> pd.DataFrame:
    return pd.DataFrame([asdict(listing) for listing in batch])


@settings(max_examples=25, deadline=None)
@given(st.lists(listings, min_size=1, max_size=5), levels)
def test_value_and_value_frame_agree_at_any_level(valuer, batch, level):
    frame = valuer.value_frame(frame_of(*batch), level=level)
    for i, listing in enumerate(batch):
        one = valuer.value(listing, level)
        assert [one.price_estimate, one.price_low, one.price_high] == frame.iloc[i].tolist()


# --- the distribution ----------------------------------------------------------------------------


def _unclipped(valuation) -> bool:
    """The range ends come from the distribution's tails, not from the estimate they enclose."""
    grid, tail = valuation.distribution.grid, (1 - valuation.interval) / 2
    return grid.quantile(tail) <= 0 <= grid.quantile(1 - tail)


@EXAMPLES
@given(listings, levels)
def test_range_ends_sit_at_the_tails_up_to_whole_yuan(valuer, listing, level):
    """The range ends are the tail quantiles rounded inwards to whole yuan (sales are whole
    yuan: a sale lies within the tails exactly when it lies within these ends): each end is
    within the tail, and one yuan further out is past it (up to the grid's 0.02 resolution)."""
    valuation = valuer.value(listing, level)
    assume(_unclipped(valuation))
    distribution, tail = valuation.distribution, (1 - level) / 2
    low, high, estimate = valuation.price_low, valuation.price_high, valuation.price_estimate
    assume(low < estimate < high)  # not a range narrower than a yuan, held open to the estimate
    if low > 1:
        assert distribution.percentile(low) >= tail - TOLERANCE
        assert distribution.percentile(low - 1) <= tail + TOLERANCE
    assert distribution.percentile(high) <= 1 - tail + TOLERANCE
    assert distribution.percentile(high + 1) >= 1 - tail - TOLERANCE


def test_a_sale_is_within_the_range_exactly_when_within_its_tails(valuer):
    """Whole-yuan ends hold the same sales as the tails themselves: for every whole-yuan price
    around a cheap listing's range, inside the ends <=> inside the tail quantiles."""
    cheap = Listing(
        fans=300, violations=True, live_permission=False, verified=False, category="搞笑"
    )
    valuation = valuer.value(cheap, DEFAULT_LEVEL)
    distribution, tail = valuation.distribution, (1 - DEFAULT_LEVEL) / 2
    below, above = distribution.price_at(tail), distribution.price_at(1 - tail)
    assert valuation.price_high < 1000, "the listing must be cheap for a yuan to matter"
    for price in range(1, int(valuation.price_high) + 10):
        inside_ends = valuation.price_low <= price <= valuation.price_high
        assert inside_ends == (below <= price <= above), price


@EXAMPLES
@given(
    st.builds(
        Listing,
        fans=st.integers(100_000, 10**9),
        violations=st.booleans(),
        live_permission=st.booleans(),
        verified=st.booleans(),
        category=st.sampled_from([*CATEGORY_PREMIUM, UNKNOWN]),
    ),
    st.sampled_from(LEVELS),
)
def test_percentile_at_the_range_ends_is_the_tail(valuer, listing, level):
    """Where a yuan is a negligible share of the price, the range ends are the tails within 0.02.

    At the usual levels only: the grid holds each band's order statistics, so a tail probability
    can fall anywhere inside a run of tied z (1/(n+1) wide, ~0.03 at the extremes of a band with
    ~60 calibration sales) and the percentile reads back the run's first probability.
    """
    valuation = valuer.value(listing, level)
    distribution = valuation.distribution
    assume(_unclipped(valuation))
    # Rounding to whole yuan moves log price by at most 1/price: keep it under 0.005 in z.
    assume(valuation.price_low * distribution.scale >= 200)
    assert abs(distribution.percentile(valuation.price_low) - (1 - level) / 2) <= TOLERANCE
    assert abs(distribution.percentile(valuation.price_high) - (1 + level) / 2) <= TOLERANCE


@EXAMPLES
@given(listings, st.lists(st.floats(0.01, 1e9), min_size=2, max_size=6))
def test_percentile_is_non_decreasing_in_price(valuer, listing, prices):
    distribution = valuer.value(listing).distribution
    percentiles = [distribution.percentile(price) for price in sorted(prices)]
    assert percentiles == sorted(percentiles)
    assert all(0 <= p <= 1 for p in percentiles)


@EXAMPLES
@given(listings, st.floats(0.01, 0.99))
def test_price_at_and_percentile_invert_each_other(valuer, listing, probability):
    """Just below price_at(p) the percentile is at most p, just above it at least p (a tied
    stretch of the grid is one price for a run of probabilities)."""
    distribution = valuer.value(listing).distribution
    price = distribution.price_at(probability)
    assert price > 0
    assert distribution.percentile(price * (1 - 1e-6)) <= probability + 1e-9
    assert distribution.percentile(price * (1 + 1e-6)) >= probability - 1e-9


# --- Mondrian bands ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fans, band",
    [
        (0, 0),
        (9_999, 0),
        (10_000, 1),
        (99_999, 1),
        (100_000, 2),
        (999_999, 2),
        (1_000_000, 3),
        (10**10, 3),
    ],
)
def test_fans_band_boundaries(fans, band):
    assert fans_band(fans) == band
    assert fans_band(float(fans)) == band


def test_fans_band_on_arrays():
    fans = np.array([9_999, 10_000, 99_999, 100_000, 1_000_000])
    assert fans_band(fans).tolist() == [0, 1, 1, 2, 3]


@pytest.fixture(scope="module")
def banded(valuer) -> Valuer:
    """The session's model with a residual grid of clearly different width in each band."""
    base = np.asarray(valuer.card.residual_z_by_band[0])
    spread = [(base * (band + 1)).tolist() for band in range(N_BANDS)]
    return Valuer(valuer.boosters, valuer.encoder, replace(valuer.card, residual_z_by_band=spread))


def expected_range(valuer: Valuer, listing: Listing, level: float, band: int):
    row = valuer.encoder.row(listing)
    center = valuer.boosters["point"].predict(row)[0]
    if valuer.curve is not None:
        center += float(valuer.curve(row)[0])
    scale = max(valuer.boosters["scale"].predict(row)[0], MIN_SCALE)
    tail = (1 - level) / 2
    grid = valuer.grids[band]
    low = min(center + scale * grid.quantile(tail), center)
    high = max(center + scale * grid.quantile(1 - tail), center)
    estimate = max(round(math.exp(center)), 1)  # whole yuan: the ends round inwards
    return max(min(math.ceil(math.exp(low)), estimate), 1), max(
        math.floor(math.exp(high)), estimate
    )


@pytest.mark.parametrize("fans", BOUNDARY_FANS)
@pytest.mark.parametrize("level", [0.5, 0.95])
def test_each_listing_uses_its_bands_grid(banded, fans, level):
    listing = Listing(fans, False, True, False, "美食")
    band = int(fans_band(fans))
    valuation = banded.value(listing, level)
    assert valuation.distribution.grid is banded.grids[band]
    expected = {b: expected_range(banded, listing, level, b) for b in range(N_BANDS)}
    assert (valuation.price_low, valuation.price_high) == expected[band]
    others = [expected[b] for b in range(N_BANDS) if b != band]
    assert expected[band] not in others  # the grids really differ: the test can tell them apart
    row = banded.value_frame(frame_of(listing), level).iloc[0]
    assert (row["price_low"], row["price_high"]) == expected[band]


def test_session_model_has_a_grid_per_band(valuer):
    assert len(valuer.grids) == N_BANDS
    for grid in valuer.grids:
        assert np.all(np.diff(grid.p) > 0)
        assert np.all(np.diff(grid.z) >= 0)
        assert grid.z[0] < 0 < grid.z[-1]


# --- training: the conformal grid ----------------------------------------------------------------


def test_conformal_quantiles_are_the_documented_order_statistics():
    scores = np.arange(1, 100, dtype=float)  # n = 99: (n + 1) p = 100 p
    got = conformal_quantiles(scores[::-1].copy(), np.array([0.1, 0.5, 0.9]))
    # p < 0.5 (and 0.5 itself): floor((n+1)p)-th smallest; p > 0.5: ceil((n+1)p)-th.
    assert got.tolist() == [10.0, 50.0, 90.0]


def test_conformal_quantiles_between_order_statistics_round_outwards():
    scores = np.arange(1, 100, dtype=float)
    got = conformal_quantiles(scores, np.array([0.105, 0.895]))
    assert got.tolist() == [10.0, 90.0]  # 100 p = 10.5 -> 10th; 89.5 -> 90th


def test_conformal_quantiles_clip_to_the_extremes():
    scores = np.array([3.0, 1.0, 2.0])  # n = 3: 4 p
    got = conformal_quantiles(scores, np.array([0.005, 0.1, 0.9, 0.995]))
    assert got.tolist() == [1.0, 1.0, 3.0, 3.0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=300))
def test_conformal_grid_is_non_decreasing_and_drawn_from_the_scores(scores):
    grid = conformal_quantiles(np.array(scores), RESIDUAL_P)
    assert grid.shape == RESIDUAL_P.shape
    assert np.all(np.diff(grid) >= 0)
    assert set(grid.tolist()) <= set(scores)


def documented_rank(n: int, p: float) -> int:
    exact = (n + 1) * Fraction(str(p))
    rank = math.ceil(exact) if exact > Fraction(n + 1, 2) else math.floor(exact)
    return min(max(rank, 1), n)


def test_conformal_quantiles_are_exact_at_every_grid_probability():
    n = 99
    got = conformal_quantiles(np.arange(1, n + 1, dtype=float), RESIDUAL_P)
    expected = [documented_rank(n, p) for p in RESIDUAL_P]
    assert got.tolist() == expected


def test_conformal_quantiles_of_a_sale_s_equal_copies_are_its_own():
    scores = np.random.default_rng(0).standard_t(3, 67)
    copies = np.repeat(scores[:, None], 7, axis=1)
    np.testing.assert_array_equal(
        conformal_quantiles(copies, RESIDUAL_P), conformal_quantiles(scores, RESIDUAL_P)
    )


def test_conformal_quantiles_rank_whole_sales_among_their_copies():
    """99 sales of two equally likely scores each, s and s + 0.5: p = 0.1 needs 10 sales' worth
    at or below (the 20th of 198 scores, the 10th sale's upper copy), p = 0.9 90 sales' worth."""
    sales = np.arange(1, 100, dtype=float)
    scores = np.column_stack([sales, sales + 0.5])[::-1].copy()
    got = conformal_quantiles(scores, np.array([0.1, 0.9]))
    assert got.tolist() == [10.5, 90.5]


def test_band_rows_keeps_a_band_with_enough_rows():
    bands = np.repeat([0, 1, 2, 3], [MIN_BAND_ROWS, 10, MIN_BAND_ROWS + 10, 5])
    chosen = _band_rows(bands, 0)
    assert chosen.dtype == bool and chosen.shape == bands.shape
    np.testing.assert_array_equal(chosen, bands == 0)
    np.testing.assert_array_equal(_band_rows(bands, 2), bands == 2)


def test_band_rows_widens_a_thin_band_to_its_neighbours():
    bands = np.repeat([0, 1, 2, 3], [MIN_BAND_ROWS, 10, MIN_BAND_ROWS + 10, 5])
    np.testing.assert_array_equal(_band_rows(bands, 1), bands <= 2)  # 0..2, both sides
    np.testing.assert_array_equal(_band_rows(bands, 3), bands >= 2)  # 2..3: 75 rows suffice


def test_band_rows_widens_until_enough_rows():
    bands = np.repeat([0, 1, 2, 3], [MIN_BAND_ROWS, 1, 1, 1])
    np.testing.assert_array_equal(_band_rows(bands, 3), np.ones(len(bands), dtype=bool))
    np.testing.assert_array_equal(_band_rows(bands, 2), bands >= 0)
    np.testing.assert_array_equal(_band_rows(bands, 1), bands <= 2)


def test_band_rows_never_goes_beyond_all_bands():
    bands = np.repeat([0, 1, 2, 3], [3, 2, 0, 4])  # 9 rows in all: never enough
    for band in range(N_BANDS):
        np.testing.assert_array_equal(_band_rows(bands, band), np.ones(len(bands), dtype=bool))
    empty = np.array([], dtype=int)
    assert _band_rows(empty, 2).shape == (0,)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 150), min_size=N_BANDS, max_size=N_BANDS), st.integers(0, 3))
def test_band_rows_is_the_narrowest_symmetric_widening(counts, band):
    bands = np.repeat(np.arange(N_BANDS), counts)
    chosen = _band_rows(bands, band)
    for width in range(N_BANDS):
        low, high = max(band - width, 0), min(band + width, N_BANDS - 1)
        window = (bands >= low) & (bands <= high)
        if window.sum() >= MIN_BAND_ROWS or (low == 0 and high == N_BANDS - 1):
            np.testing.assert_array_equal(chosen, window)
            break


# against a well-kept library -------------------------------------------------------------------


@pytest.mark.parametrize("n", [40, 57, 300, 2001])
@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95])
def test_the_range_is_crepes_mondrian_conformal_interval(n, level):
    """Our split-conformal tails are those of crepes' ConformalPredictiveSystem given the same
    standardized residuals, difficulty estimates and Mondrian band (benchmarks/ranges.py compares
    the two on the scenario suite)."""
    from crepes import ConformalPredictiveSystem

    rng = np.random.default_rng(n)
    sigmas = rng.uniform(0.1, 0.5, n)
    residuals = sigmas * rng.standard_t(4, n)
    bins = np.zeros(n, dtype=int)
    tail = (1 - level) / 2
    ours = conformal_quantiles(residuals / sigmas, np.array([tail, 1 - tail]))
    cps = ConformalPredictiveSystem().fit(residuals, sigmas=sigmas, bins=bins)
    y_hat, sigma = np.array([3.0]), np.array([0.3])
    interval = cps.predict_int(y_hat, sigmas=sigma, bins=np.zeros(1, int), confidence=level)
    np.testing.assert_allclose(interval[0], y_hat[0] + sigma[0] * ours, rtol=1e-12)


def test_a_band_with_few_sales_is_shrunk_towards_its_neighbours():
    """A top band of 50 sales with wider residuals than its neighbours: its grid lies between its
    own quantiles and its neighbourhood's, by weight n / (n + BAND_PRIOR_ROWS); a band of a
    few hundred keeps exactly its own."""
    from training.steps import BAND_PRIOR_ROWS, _band_quantiles

    rng = np.random.default_rng(3)
    counts = [3000, 3000, 1000, 50]
    bands = np.repeat(np.arange(N_BANDS), counts)
    z = rng.standard_normal(len(bands)) * np.where(bands == 3, 2.0, 1.0)
    top = _band_quantiles(z, bands, 3)
    own = conformal_quantiles(z[bands == 3], RESIDUAL_P)
    wide = conformal_quantiles(z[_band_rows(bands, 3, 4 * BAND_PRIOR_ROWS)], RESIDUAL_P)
    weight = 50 / (50 + BAND_PRIOR_ROWS)
    np.testing.assert_allclose(top, np.maximum.accumulate(weight * own + (1 - weight) * wide))
    tails = [RESIDUAL_P.searchsorted(0.1), RESIDUAL_P.searchsorted(0.9)]
    assert own[tails[0]] < top[tails[0]] < wide[tails[0]]  # narrower than its own, not as narrow
    assert wide[tails[1]] < top[tails[1]] < own[tails[1]]
    for band in (0, 1, 2):  # enough sales of its own (4 * BAND_PRIOR_ROWS): exactly its own
        own = conformal_quantiles(z[bands == band], RESIDUAL_P)
        np.testing.assert_array_equal(_band_quantiles(z, bands, band), own)
    assert np.all(np.diff(top) >= 0)
