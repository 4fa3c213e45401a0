"""The market index: estimated from dated sales, restating them to the market date, and quoting
as of an earlier date."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from data.markets import BY_NAME, MONTHS
from training import steps
from valuation.market import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    DateOutsideMarket,
    MarketIndex,
    shape_level,
)
from valuation.schema import CATEGORY, FANS, FLAGS, SOLD_AT

DRIFTING = BY_NAME["drifting"]


@pytest.fixture(scope="module")
def drifting_sales() -> pd.DataFrame:
    sales = DRIFTING.sales(8000, seed=21)
    sales[SOLD_AT.name] = pd.to_datetime(sales[SOLD_AT.name])
    return sales


@pytest.fixture(scope="module")
def index(drifting_sales) -> MarketIndex:
    encoder = steps.vocabulary(drifting_sales)
    return steps.market_index(drifting_sales, encoder, folds=3, seed=0)


def test_the_index_ends_at_the_latest_sale(index, drifting_sales):
    assert index.market_date == drifting_sales[SOLD_AT.name].max().date()
    first = drifting_sales[SOLD_AT.name].min().date()
    assert first <= index.start <= first + dt.timedelta(days=10)  # its 0.5th percentile
    assert index.days[-1] == (index.market_date - index.start).days
    assert index.overall[-1] == 0.0
    assert all(levels[-1] == 0.0 for levels in index.by_category.values())


@pytest.mark.parametrize("category", ["汽车", "情感", "美食"])
def test_a_category_s_drift_is_recovered(index, category):
    """The simulator moves 汽车 by +2% a month, 情感 by -1.5%, 美食 by +1.2%: a year before the
    market date the category's level is 12 months of that rate below (or above) it."""
    rate = DRIFTING.monthly_rates[category]
    year_ago = index.market_date - dt.timedelta(days=12 * 30)  # the simulator's months
    level = index.level([category], year_ago)[0]
    assert level == pytest.approx(-12 * rate, abs=0.06)


def test_the_shock_is_seen(index):
    """游戏 lost 20% at month 16 (8 months before the market date) and otherwise rose 0.8% a month."""
    before = index.market_date - dt.timedelta(days=10 * 30)
    expected = np.log(1 / 0.8) - 10 * DRIFTING.monthly_rates["游戏"]
    assert index.level(["游戏"], before)[0] == pytest.approx(expected, abs=0.08)


def test_restating_moves_each_sale_to_the_market_date(index, drifting_sales):
    restated = steps.restated(drifting_sales, index)
    months_before = (
        pd.Timestamp(index.market_date) - drifting_sales[SOLD_AT.name]
    ).dt.days / DAYS_PER_MONTH
    cars = (drifting_sales[CATEGORY.name] == "汽车").to_numpy()
    # 汽车 sales were cheaper the longer ago they sold: their level falls with age
    slope = np.polyfit(months_before[cars], restated[steps.MARKET_LEVEL][cars], 1)[0]
    assert slope == pytest.approx(-DRIFTING.monthly_rates["汽车"], abs=0.006)
    now = steps.log_price_now(restated)
    assert np.allclose(now, np.log(drifting_sales["price"]) - restated[steps.MARKET_LEVEL])


def test_restating_as_of_an_earlier_date_moves_each_sale_to_that_date(index, drifting_sales):
    """A holdout is valued by a fit whose market date came before it: its sales are restated to
    that date, each by its category's level then (汽车 rose 2% a month: a sale on the market date
    stands a year of that above a year back)."""
    sales = drifting_sales.head(600)
    year_ago = index.market_date - dt.timedelta(days=12 * 30)
    now = steps.restated(sales, index)[steps.MARKET_LEVEL].to_numpy()
    then = steps.restated(sales, index, as_of=year_ago)[steps.MARKET_LEVEL].to_numpy()
    assert np.allclose(then, now - steps.levels_on(sales, index, year_ago))
    assert np.allclose(
        steps.restated(sales, index, as_of=index.market_date)[steps.MARKET_LEVEL], now
    )
    on_the_day = sales.assign(**{SOLD_AT.name: pd.Timestamp(year_ago)})
    assert np.allclose(steps.restated(on_the_day, index, as_of=year_ago)[steps.MARKET_LEVEL], 0.0)
    cars = (sales[CATEGORY.name] == "汽车").to_numpy()
    moved = then[cars] - now[cars]
    assert np.allclose(moved, moved[0])  # one category, one level a year back
    assert moved[0] == pytest.approx(12 * DRIFTING.monthly_rates["汽车"], abs=0.06)


def test_a_whole_market_s_crash_in_its_last_months_is_read_at_the_market_date(drifting_sales):
    """Every sale of the last three months at 75% of its price: a kernel of half a year smooths
    the step away (its line through the last months lands off the new level); the width chosen
    for this market is narrow, and the market date's level stands the crash below the old."""
    sales = drifting_sales.copy()
    end = sales[SOLD_AT.name].max()
    crashed = (sales[SOLD_AT.name] > end - pd.Timedelta(days=90)).to_numpy()
    sales.loc[crashed, "price"] = np.round(sales.loc[crashed, "price"] * 0.75)
    index = steps.market_index(sales, steps.vocabulary(sales), folds=3, seed=0)
    assert index.bandwidth_days <= 60
    before = index.market_date - dt.timedelta(days=5 * 30)
    assert MarketIndex.from_card(index.as_card()).bandwidth_days == index.bandwidth_days
    # 自媒体 holds still in the simulator: its level 5 months back is the crash's alone
    assert index.level(["自媒体"], before)[0] == pytest.approx(np.log(1 / 0.75), abs=0.06)


@pytest.mark.parametrize("turning", [True, False])
def test_the_kernel_is_narrow_where_the_market_turns_and_wide_where_it_is_steady(turning):
    """6,000 sales over two years: a level swinging 0.15 log each way within a year needs a kernel
    of a month or two; a steady trend the widest (the least noise at the market date)."""
    rng = np.random.default_rng(3)
    day = rng.uniform(0, 730, 6000)
    level = 0.15 * np.sin(2 * np.pi * day / 365) if turning else 0.2 * day / 365
    residual = level + rng.normal(0, 0.3, len(day))
    grid = np.unique(np.append(np.arange(0.0, 730.0, DAYS_PER_MONTH), 730.0))
    noise = steps._robust_variance(residual)
    chosen = steps.index_bandwidth(day, residual, grid, np.ones(len(day)), noise, seed=0)
    if turning:
        assert chosen <= 60
    else:
        assert chosen == max(steps.INDEX_BANDWIDTHS_DAYS)


def test_an_export_of_a_few_weeks_keeps_the_widest_kernel(drifting_sales):
    """Over 40 days every width fits alike: their losses differ by rounding (1e-5), which can
    still be a standard error or more of so small a difference; the widest is kept, not the
    narrowest."""
    sales = drifting_sales.head(2000).copy()
    days = np.random.default_rng(0).integers(0, 41, len(sales))
    sales[SOLD_AT.name] = pd.Timestamp("2026-10-31") - pd.to_timedelta(days, unit="D")
    index = steps.market_index(sales, steps.vocabulary(sales), folds=3, seed=0)
    assert index.bandwidth_days == max(steps.INDEX_BANDWIDTHS_DAYS)


def test_undated_sales_have_no_index(drifting_sales):
    undated = drifting_sales.drop(columns=[SOLD_AT.name])
    assert steps.market_index(undated, steps.vocabulary(undated), folds=3, seed=0) is None
    assert (steps.restated(undated, None)[steps.MARKET_LEVEL] == 0).all()


def test_an_undated_sale_in_a_dated_export_counts_as_a_sale_at_the_market_date(index):
    sales = pd.DataFrame({CATEGORY.name: ["汽车", "汽车"], SOLD_AT.name: [index.start, None]})
    level = steps.restated(sales, index)[steps.MARKET_LEVEL].to_numpy()
    assert level[1] == 0.0 and level[0] < -0.2


def test_a_category_s_restatement_spread_is_its_sales_mean_index_error(index, drifting_sales):
    sales = drifting_sales.head(400)
    spread = steps.restatement_spread(sales, index)
    day = (sales[SOLD_AT.name] - pd.Timestamp(index.start)).dt.days.to_numpy(dtype=float)
    for category in ("汽车", "游戏"):
        rows = (sales[CATEGORY.name] == category).to_numpy()
        errors = np.interp(day[rows], index.days, index.errors[category])
        np.testing.assert_allclose(spread[rows], errors.mean())
        assert 0.0 < errors.mean() < 0.2
    # An undated sale stands at the market date, where the index is sure of itself (0).
    undated = sales.assign(**{SOLD_AT.name: pd.NaT})
    assert not steps.restatement_spread(undated, index).any()
    assert not steps.restatement_spread(sales, None).any()


def test_dates_outside_the_market_are_refused(index):
    with pytest.raises(DateOutsideMarket, match="after the market date"):
        index.level(["美食"], index.market_date + dt.timedelta(days=1))
    with pytest.raises(DateOutsideMarket, match="before the market index's first day"):
        index.level(["美食"], index.start - dt.timedelta(days=1))
    assert index.level(["美食"], index.market_date)[0] == 0.0


def test_a_category_the_index_does_not_know_follows_the_whole_market(index):
    day = index.start + dt.timedelta(days=100)
    overall = float(np.interp(100, index.days, index.overall))
    assert index.level(["新类目"], day)[0] == pytest.approx(overall)


def test_the_index_is_data_in_the_card(index):
    import json

    again = MarketIndex.from_card(json.loads(json.dumps(index.as_card(), ensure_ascii=False)))
    assert again == index
    assert MarketIndex.from_card(None) is None


def test_the_simulated_months_span_the_market(drifting_sales):
    span = (drifting_sales[SOLD_AT.name].max() - drifting_sales[SOLD_AT.name].min()).days
    assert span / DAYS_PER_MONTH == pytest.approx(MONTHS * 30 / DAYS_PER_MONTH, abs=0.2)


def test_a_few_mistyped_old_dates_do_not_stretch_the_index(drifting_sales, index):
    """Three sales typed as 2013 (parsing accepts dates from 2011): the index still starts with
    the market's real sales, and its levels stay those of the clean data."""
    typos = drifting_sales.copy()
    typos.loc[typos.index[:3], SOLD_AT.name] = pd.Timestamp("2013-03-01")
    stretched = steps.market_index(typos, steps.vocabulary(typos), folds=3, seed=0)
    assert stretched.start >= index.start - dt.timedelta(days=5)
    assert len(stretched.days) == len(index.days)
    for category, levels in stretched.by_category.items():
        assert np.all(np.isfinite(levels)) and np.max(np.abs(levels)) < 1.0, category


def test_a_category_sold_only_lately_follows_the_market_where_it_has_no_sales(drifting_sales):
    """30 sales of a new category, all in the last month: two years before, nothing informs its
    own level, so it is the whole market's (no line drawn back through the gap)."""
    late = drifting_sales.copy()
    rows = late.index[:30]
    late.loc[rows, CATEGORY.name] = "新类目"
    late.loc[rows, SOLD_AT.name] = late[SOLD_AT.name].max() - pd.Timedelta(days=10)
    index = steps.market_index(late, steps.vocabulary(late), folds=3, seed=0)
    early = index.start + dt.timedelta(days=30)
    at = (early - index.start).days
    overall = float(np.interp(at, index.days, index.overall))
    assert index.level(["新类目"], early)[0] == pytest.approx(overall, abs=0.02)


def test_a_small_export_reads_each_category_s_trend_from_all_its_sales():
    """3,000 dated sales, 100-400 per category over 24 months: a category's level two years ago
    (relative to the market date) against the simulator's. Read from its latest months alone,
    shrunk towards the market's, it was 0.075 log off (RMS, `trending`) and 0.078 (`drifting`);
    as a trend line through all its sales, every sale weighed by its precision, 0.047 and 0.051."""
    gaps = []
    for name in ("trending", "drifting"):
        market = BY_NAME[name].sized(3000)
        sales = market.sales(market.rows, seed=1).drop(columns=["fate"])
        index = steps.market_index(sales, steps.vocabulary(sales), folds=3, seed=0)
        months = MONTHS - (index.days[-1] - index.days[0]) / DAYS_PER_MONTH
        for category, count in index.sales.items():
            if count >= 100:
                drift = market._drift(np.array([category] * 2), np.array([months, MONTHS]))
                gaps.append(index.by_category[category][0] - (drift[0] - drift[1]))
    assert np.sqrt(np.mean(np.square(gaps))) < 0.062


def test_the_index_s_standard_errors_are_those_of_its_levels():
    """`errors` (what GET /v1/market answers beside each level, and what widens a dated model's
    ranges) against the levels' real errors: at the index's start and half-way, per category of
    50+ sales, on 3,000-sale exports of four dated markets, seeds 1-2. Their standardized
    errors' mean square is about 1 (1.04 over these 224 levels on 2026-12-06, none 3 errors
    out): not understated (a dated quote's range would be too narrow), nor grossly overstated."""
    standardized = []
    for name in ("trending", "drifting", "crash", "seasonal"):
        market = BY_NAME[name].sized(3000)
        for seed in (1, 2):
            sales = market.sales(market.rows, seed=seed).drop(columns=["fate"])
            index = steps.market_index(sales, steps.vocabulary(sales), folds=3, seed=0)
            for category, count in index.sales.items():
                if count < 50:
                    continue
                for day in (0.0, index.days[-1] / 2):
                    months = MONTHS - (index.days[-1] - day) / DAYS_PER_MONTH
                    drift = market._drift(np.array([category] * 2), np.array([months, MONTHS]))
                    at = np.array([day])
                    gap = index.levels_at([category], at)[0] - (drift[0] - drift[1])
                    standardized.append(gap / index.errors_at([category], at)[0])
    z = np.array(standardized)
    assert len(z) >= 100
    assert 0.4 < np.mean(z**2) < 1.6
    assert np.mean(np.abs(z) > 3) < 0.02


def test_a_still_category_s_slope_within_its_noise_is_shrunk_to_the_typical_one():
    """Half the categories follow the typical trend (the prior's share 0.5, the others' own trends
    spread 0.3 log a year): a slope one of its standard errors from the typical's is mostly noise,
    shrunk far more than a normal prior alone would; one six standard errors away is kept."""
    spread, error = 0.3 / DAYS_PER_YEAR, 0.05 / DAYS_PER_YEAR
    kept = spread**2 / (spread**2 + error**2)  # a normal prior's shrinkage
    noisy, _ = steps.trend_posterior(error, error**2, follow=0.5, spread=spread)
    assert 0 < noisy < 0.3 * kept * error
    clear, variance = steps.trend_posterior(6 * error, error**2, follow=0.5, spread=spread)
    assert clear == pytest.approx(kept * 6 * error, rel=0.01)
    assert variance == pytest.approx(kept * error**2, rel=0.05)
    # With no category following, the posterior is the normal prior's.
    plain, _ = steps.trend_posterior(error, error**2, follow=0.0, spread=spread)
    assert plain == pytest.approx(kept * error)


def test_the_trend_prior_is_read_from_the_categories_slopes():
    """40 categories' measured slopes (each within 0.05 log a year of its own trend): where half
    hold still beside the typical and half trend at 0.3 log a year, the prior gives a share to the
    still ones; where every one trends its own way, little or none."""
    rng = np.random.default_rng(3)
    error = np.full(40, (0.05 / DAYS_PER_YEAR) ** 2)
    noise = rng.normal(0, 0.05, 40)
    half = np.where(np.arange(40) < 20, 0.0, rng.normal(0, 0.3, 40)) + noise
    every = rng.normal(0, 0.3, 40) + noise
    follow_half, spread_half = steps.trend_prior(half / DAYS_PER_YEAR, error)
    follow_every, spread_every = steps.trend_prior(every / DAYS_PER_YEAR, error)
    assert 0.3 <= follow_half <= 0.7
    assert follow_every <= 0.1
    assert 0.15 <= spread_half * DAYS_PER_YEAR <= 0.45
    assert 0.15 <= spread_every * DAYS_PER_YEAR <= 0.45


def test_a_small_export_s_still_categories_are_read_as_still():
    """`trending`'s 8 categories that hold still, in 3,000-sale exports (seeds 1-3): their levels
    two years back against the simulator's (0), RMS. Each category's slope shrunk by a fixed
    normal prior (0.3 log a year), 0.079: a slope two standard errors from 0 was kept nearly
    whole. With the prior read from the categories' slopes, a share of them following the typical
    trend, 0.070."""
    market = BY_NAME["trending"].sized(3000)
    gaps = []
    for seed in (1, 2, 3):
        sales = market.sales(market.rows, seed=seed).drop(columns=["fate"])
        index = steps.market_index(sales, steps.vocabulary(sales), folds=3, seed=0)
        for category, levels in index.by_category.items():
            if category not in market.monthly_rates and category != market.shock[0]:
                gaps.append(levels[0])
    assert len(gaps) == 24
    assert np.sqrt(np.mean(np.square(gaps))) < 0.074


def test_a_timestamp_is_read_as_its_day(index):
    day = index.market_date
    stamp = pd.Timestamp(day) + pd.Timedelta(hours=15)
    assert index.level(["美食"], stamp)[0] == index.level(["美食"], day)[0]


def test_the_index_holds_still_where_only_levels_drift(index):
    assert index.shape == {}  # drifting: category levels move, the market's shape does not


@pytest.fixture(scope="module")
def moving_sales() -> pd.DataFrame:
    return BY_NAME["shape-drift"].sales(8000, seed=21).drop(columns=["fate"])


def test_a_moving_shape_is_read_and_restated(moving_sales):
    """shape-drift: over 24 months large accounts gain 0.12 log per decade of fans (0.06 a year)
    and live permission's premium grows by 0.25 (0.125 a year); a sale a year old stood that
    much below today's shape."""
    encoder = steps.vocabulary(moving_sales)
    index = steps.market_index(moving_sales, encoder, folds=3, seed=0)
    per_year = index.shape["per_year"]
    assert per_year["fans"] == pytest.approx(-0.06, abs=0.015)
    assert per_year["live_permission"] == pytest.approx(-0.125, abs=0.03)
    assert per_year["verified"] == 0.0  # held still: no slope beyond its noise
    restated = steps.restated(moving_sales, index)
    old = pd.to_datetime(moving_sales[SOLD_AT.name]) < pd.Timestamp(
        index.market_date
    ) - pd.Timedelta(days=540)
    live = moving_sales["live_permission"].to_numpy()
    level = restated[steps.MARKET_LEVEL].to_numpy()
    # 18+ months old, the same category: a live account's level stood lower than another's
    same = old.to_numpy() & (moving_sales[CATEGORY.name] == "搞笑").to_numpy()
    assert level[same & live].mean() < level[same & ~live].mean() - 0.1
    import json

    again = MarketIndex.from_card(json.loads(json.dumps(index.as_card(), ensure_ascii=False)))
    assert again == index


def test_too_few_dated_sales_read_no_slope(moving_sales):
    """A few dozen sales: least squares could fit their noise exactly and every slope would look
    sure; the shape is taken as still."""
    few = moving_sales.head(60)
    rng = np.random.default_rng(0)
    ages = rng.uniform(0, 720, len(few))
    residual = 0.3 * rng.normal(size=len(few)) - 0.0005 * ages * (np.log10(few["fans"]) - 4)
    assert steps.shape_drift(few, residual, ages) == {}


def test_a_mistyped_old_date_is_not_restated_by_years_of_slope(moving_sales):
    """Ages stop at the index's start: the largest accounts with a sale date typed a decade back
    are restated like the oldest real sales, not by ten years of the fans slope."""
    typed = moving_sales.reset_index(drop=True).copy()
    largest = typed["fans"].nlargest(5).index
    typed[SOLD_AT.name] = pd.to_datetime(typed[SOLD_AT.name])
    typed.loc[largest, SOLD_AT.name] = pd.Timestamp("2012-01-01")
    index = steps.market_index(typed, steps.vocabulary(typed), folds=3, seed=0)
    assert index.shape["per_year"]["fans"] == pytest.approx(-0.06, abs=0.015)
    level = steps.restated(typed, index)[steps.MARKET_LEVEL].to_numpy()
    others = np.delete(level, largest)
    assert others.min() - 0.05 <= level[largest].min() and level[largest].max() <= others.max()


def _aged(sales: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """18 months of ages (days) for `sales`, live permission centred, and a noise of 0.15 log."""
    rng = np.random.default_rng(seed)
    ages = rng.uniform(0.0, 18 * DAYS_PER_MONTH, len(sales))
    live = sales["live_permission"].to_numpy(dtype=float)
    return ages, live - live.mean(), 0.15 * rng.normal(size=len(sales))


def test_a_premium_that_fell_only_lately_bends_the_shape(moving_sales):
    """Live permission's premium held for 15 months and fell by 0.3 log in the last 3: a line
    through 18 months says a sale 3 months old stood ~0.1 above today's shape, one 7 months old
    ~0.2 (most of the fall left in today's prices); the bends read the last quarter's fall and
    the flat year before it (the path's error at the market date, ~0.03 here, is the
    flexibility's price)."""
    ages, live, noise = _aged(moving_sales, seed=3)
    years = ages / DAYS_PER_YEAR
    fell = 0.3 * np.minimum(years, 0.25) / 0.25
    shape = steps.shape_drift(moving_sales, noise + fell * live, ages)
    assert set(shape["bends"]) == {"live_permission"}  # fans and the other flags held still
    restated = shape_level(shape, moving_sales, ages)
    for age_years, part in [(1 / 12, 0.1), (0.25, 0.3), (0.6, 0.3), (1.2, 0.3)]:
        near = np.abs(years - age_years) < 0.03
        slope = np.polyfit(live[near], restated[near], 1)[0]
        assert slope == pytest.approx(part, abs=0.06), age_years
    assert shape_level(shape, moving_sales, np.zeros(len(ages))).tolist() == [0.0] * len(ages)


def test_a_premium_that_moved_steadily_takes_a_line_without_bends(moving_sales):
    """The same premium falling by 0.3 log over the whole 18 months: a line, no bends (a Wald
    test at SHAPE_BEND_T's level), its slope 0.2 a year."""
    ages, live, noise = _aged(moving_sales, seed=4)
    shape = steps.shape_drift(moving_sales, noise + 0.2 * ages / DAYS_PER_YEAR * live, ages)
    assert "bends" not in shape
    assert shape["per_year"]["live_permission"] == pytest.approx(0.2, abs=0.03)


def test_the_shape_s_bends_add_a_slope_under_each_knot():
    """shape_level reads a card's bends as it was written: per_year a + bend min(a, knot)."""
    shape = {
        "centres": {FANS.name: 4.0, "live_permission": 0.5},
        "per_year": {FANS.name: 0.0, "live_permission": 0.1},
        "bend_years": [0.25, 0.5],
        "bends": {"live_permission": [0.8, -0.2]},
    }
    listings = {FANS.name: [1e4, 1e4], "live_permission": [1.0, 0.0]}
    listings |= {flag.name: [0.0, 0.0] for flag in FLAGS if flag.name != "live_permission"}
    for years in (0.1, 0.4, 2.0):
        path = 0.1 * years + 0.8 * min(years, 0.25) - 0.2 * min(years, 0.5)
        level = shape_level(shape, listings, [years * DAYS_PER_YEAR] * 2)
        assert level == pytest.approx([0.5 * path, -0.5 * path])


def test_the_index_s_path_is_its_listing_s_level_on_each_grid_day():
    """The report draws `path`: the typical listing's level on each grid day, its part of a
    moving shape included, as `level` answers it for that listing and day."""
    typical = {FANS.name: 1_000_000, **{flag.name: False for flag in FLAGS}}
    index = MarketIndex(
        start=dt.date(2025, 1, 1),
        market_date=dt.date(2026, 1, 1),
        days=(0.0, 181.0, 365.0),
        overall=(-0.1, -0.05, 0.0),
        by_category={"美食": (-0.2, -0.1, 0.0)},
        sales={"美食": 400},
        typical=typical,
        shape={
            "centres": {FANS.name: 4.0, **{flag.name: 0.3 for flag in FLAGS}},
            "per_year": {FANS.name: -0.06},
        },
    )
    path = index.path("美食")
    listing = {k: [v] for k, v in index.listing_in("美食").items()}
    for days, value in zip(index.days, path, strict=True):
        day = index.start + dt.timedelta(days=days)
        assert value == pytest.approx(index.level(["美食"], day, listing)[0])
    # a year back, two decades of fans above the centre: 0.12 under today's shape
    assert path[0] == pytest.approx(-0.2 - 0.06 * 2.0 * 365 / 365.25)
    assert path[-1] == 0.0
    still = MarketIndex(**{**index.__dict__, "shape": {}})
    assert still.path("美食").tolist() == [-0.2, -0.1, 0.0]


def test_a_mistyped_future_date_moves_neither_the_market_date_nor_the_others(drifting_sales, index):
    """One sale dated 2062: the market date stays the latest real sale's, the sale takes the
    market date's level, and every other sale is restated nearly as without it (one sale in
    8,000 moves the fits a little)."""
    typed = drifting_sales.reset_index(drop=True).copy()
    typed.loc[5, SOLD_AT.name] = pd.Timestamp("2062-01-01")
    moved = steps.market_index(typed, steps.vocabulary(typed), folds=3, seed=0)
    assert moved.market_date == index.market_date
    assert steps.after_market_date(typed, moved).tolist() == [pd.Timestamp("2062-01-01")]
    assert steps.after_market_date(drifting_sales, index).empty
    before = steps.restated(drifting_sales.reset_index(drop=True), index)[steps.MARKET_LEVEL]
    after = steps.restated(typed, moved)[steps.MARKET_LEVEL]
    assert after[5] == pytest.approx(0.0, abs=1e-9)  # taken at the market date
    assert np.abs(after.drop(5) - before.drop(5)).max() < 0.02
