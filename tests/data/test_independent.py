"""The independent markets (data/independent.py): their truth is their real sales' quantiles,
their exports read as a marketplace's, dates only for the dated ones, and the last five have the
shapes they were written for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.independent import (
    BY_NAME,
    CATEGORIES,
    LONG_TAIL,
    LONG_TAIL_EFFECT,
    LONG_TAIL_WEIGHT,
    MARKET_DATE,
    MARKETS,
    MONTHS,
)
from valuation.loading import load_listings, write_table


@pytest.mark.parametrize("market", MARKETS, ids=lambda market: market.name)
def test_true_quantiles_hold_their_share_of_new_sales(market):
    """Of 4,000 new sales, the share under each true quantile is its level within sampling
    error (3.5 standard errors); rounded prices sit on ties: at most below, at least up to."""
    _, _, sold, truth = market.new_listings(4000, seed=7)
    for level, quantile in truth.items():
        error = 3.5 * np.sqrt(level * (1 - level) / len(sold))
        assert (sold < quantile).mean() <= level + error
        assert (sold <= quantile).mean() >= level - error
        if not market.rounded:
            assert abs((sold < quantile).mean() - level) <= error


@pytest.mark.parametrize("market", MARKETS, ids=lambda market: market.name)
def test_exports_read_whole_with_dates_only_for_the_dated_markets(market, tmp_path):
    export = market.export(600, seed=3)
    loaded = load_listings(write_table(export, tmp_path / "export.csv"), require_price=True)
    assert loaded.rejects.empty and len(loaded.listings) == 600
    dated = "sold_at" in loaded.listings and bool(loaded.listings["sold_at"].notna().all())
    assert dated is market.dated
    # fans as shown (`13.13W` or a count) read to the same count the market drew
    fans = loaded.listings["fans"].to_numpy()
    assert np.array_equal(fans, market.export(600, seed=3)["粉丝数量"].map(_count).to_numpy())


def _count(shown: str) -> float:
    return round(float(shown[:-1]) * 1e4) if shown.endswith("W") else float(shown)


def test_live_by_size_gives_large_accounts_the_flags():
    """Live permission rare under 1万 fans and common from 10万, verification likewise, and
    violations commoner on large accounts too."""
    x = BY_NAME["live-by-size"].listings(20_000, np.random.default_rng(5))
    small, large = x["fans"] < 1e4, x["fans"] >= 1e5
    assert x["live"][small].mean() < 0.2 < 0.7 < x["live"][large].mean()
    assert x["verified"][small].mean() < 0.12 < 0.45 < x["verified"][large].mean()
    assert x["violations"][small].mean() < 0.15 < 0.22 < x["violations"][large].mean()


@pytest.mark.parametrize("milestone", [1e4, 1e5, 1e6])
def test_milestones_pay_for_crossing_one_and_sellers_list_just_over(milestone):
    """The true median just over a milestone is over 1.2x the one just under (the fans part alone
    grows under 1%), and far more accounts are listed in the 16% over it than in the 16% under."""
    market = BY_NAME["milestones"]
    prices = market.prices(_listing([milestone - 100, milestone]), np.random.default_rng(5), 4000)
    under, over = np.median(prices, axis=1)
    assert over / under > 1.2
    fans = market.export(3000, seed=5)["粉丝数量"].map(_count)
    assert fans.between(milestone, milestone * 1.16, inclusive="left").sum() > 3 * (
        fans.between(milestone / 1.16, milestone, inclusive="left").sum()
    )


def test_tiny_accounts_crowd_at_a_floor_with_small_accounts_the_least_predictable():
    market = BY_NAME["tiny-accounts"]
    export = market.export(3000, seed=5)
    assert 1000 < export["粉丝数量"].map(_count).median() < 9000
    assert (export["成交价"] < 150).mean() > 0.6
    prices = market.prices(_listing([1000, 300_000]), np.random.default_rng(5), 4000)
    spread = np.log(np.quantile(prices, 0.9, axis=1) / np.quantile(prices, 0.1, axis=1))
    assert spread[0] > 2.5 * spread[1]


def test_rare_categories_has_forty_categories_the_rarest_with_a_handful_of_sales(tmp_path):
    assert len(set(LONG_TAIL)) == 40 and LONG_TAIL[:15] == CATEGORIES
    assert abs(LONG_TAIL_WEIGHT.sum() - 1) < 1e-12 and LONG_TAIL_WEIGHT.min() * 3000 < 6
    assert 0.35 < LONG_TAIL_EFFECT.std() < 0.45
    export = BY_NAME["rare-categories"].export(3000, seed=5)
    counts = export["类目"].value_counts()
    assert len(counts) >= 36 and counts.iloc[-1] <= 8 and set(counts.index) <= set(LONG_TAIL)
    loaded = load_listings(write_table(export, tmp_path / "export.csv"), require_price=True)
    assert loaded.listings["category"].nunique() == len(counts)


def test_level_shift_spans_eighteen_months_and_ends_under_its_peak():
    """Sales from 18 months before the market date to it; the same listing's true median rises
    ~30% in the first year and ends ~25% under that peak, and live permission is worth ~1.5x at
    the start and ~1.15x at the market date."""
    market = BY_NAME["level-shift"]
    sold_at = pd.to_datetime(market.export(3000, seed=5)["成交日期"])
    assert sold_at.max() == MARKET_DATE and sold_at.min() >= MARKET_DATE - pd.DateOffset(months=18)
    assert (sold_at.max() - sold_at.min()).days > 530
    rng = np.random.default_rng(5)
    median = {}
    for month in (0, 12, MONTHS):
        prices = market.prices(_listing([50_000, 50_000], month, live=[0, 1]), rng, 8000)
        median[month] = np.median(prices, axis=1)
    assert median[12][0] / median[0][0] > 1.2 and median[MONTHS][0] / median[12][0] < 0.85
    assert median[0][1] / median[0][0] > 1.35 and median[MONTHS][1] / median[MONTHS][0] < 1.25


def _listing(fans, month=MONTHS, live=0) -> dict:
    """Listings of these fans in the first category, without flags but `live`, at `month`."""
    rows = len(fans)
    return {
        "fans": np.asarray(fans, dtype=float),
        "category": np.zeros(rows, dtype=int),
        "violations": np.zeros(rows, dtype=int),
        "live": np.broadcast_to(np.asarray(live, dtype=int), (rows,)),
        "verified": np.zeros(rows, dtype=int),
        "month": np.full(rows, float(month)),
    }
