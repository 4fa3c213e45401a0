"""Tests of the scenario suite's markets (`data.markets`): shapes apart, truths that hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.markets import BY_NAME, MARKETS
from training import steps
from valuation.loading import load_listings, write_table


def test_the_suite_has_eight_or_more_markets_half_of_them_for_design():
    assert len(MARKETS) >= 8
    design = [m for m in MARKETS if m.purpose == "design"]
    report = [m for m in MARKETS if m.purpose == "report"]
    assert len(design) <= len(report) and len(design) + len(report) == len(MARKETS)
    assert len({m.name for m in MARKETS}) == len(MARKETS)
    # Shapes that differ: noise families, sizes, fans shapes, a dated one.
    assert {m.noise for m in MARKETS} == {"normal", "t3", "t2", "skew"}
    assert min(m.rows for m in MARKETS) <= 3000 and max(m.rows for m in MARKETS) >= 200_000
    assert len({m.fans_shape for m in MARKETS}) >= 3
    # dated markets on both sides: the market index is chosen on one and reported on another
    assert {m.purpose for m in MARKETS if m.dated} == {"design", "report"}


@pytest.mark.parametrize("market", MARKETS, ids=lambda m: m.name)
def test_true_quantiles_hold_their_share_of_real_sales(market):
    """On 20,000 fresh sales (typos left out: not sales), the true median splits them in half
    and the true 10-90% interval holds 80%, within sampling noise (0.35 and 0.28 points)."""
    sales = market.sales(20_000, seed=11, unseen=True, at_end=True)
    real = sales[sales["fate"] != "typo"]
    truth = market.true_quantiles(real)
    price = real["price"].to_numpy()
    assert np.mean(price <= truth[0.5]) == pytest.approx(0.5, abs=0.015)
    assert np.mean((price >= truth[0.1]) & (price <= truth[0.9])) == pytest.approx(0.8, abs=0.015)


def test_markets_draw_typos_bargains_and_unseen_categories_as_declared():
    market = BY_NAME["category-slopes"]
    sales = market.sales(40_000, seed=2, unseen=True)
    fate = sales["fate"].value_counts(normalize=True)
    assert fate["typo"] == pytest.approx(market.typo_share, abs=0.003)
    assert fate["bargain"] == pytest.approx(market.bargain_share, abs=0.003)
    assert (sales["category"] == "新类目").mean() == pytest.approx(market.unseen_share, abs=0.005)
    assert "新类目" not in set(market.sales(5000, seed=3)["category"]), "sales never have it"
    assert sales["category"].nunique() == len(market.categories()[0]) + 1


def test_exports_read_back_whole_with_dates_only_for_the_dated_market(tmp_path):
    for name in ("small-skew", "drifting"):
        market = BY_NAME[name].sized(1500)
        path = write_table(market.export(seed=4, bad_share=0.0), tmp_path / f"{name}.csv")
        loaded = load_listings(path, require_price=True)
        assert loaded.rejects.empty and len(loaded.listings) == 1500
        dated = "sold_at" in loaded.listings and bool(loaded.listings["sold_at"].notna().all())
        assert dated is market.dated


def test_the_drifting_market_moves_each_category_at_its_own_rate():
    market = BY_NAME["drifting"]
    listings = market.listings(1000, seed=5)
    start, end = market.log_typical(listings, 0), market.log_typical(listings, 24)
    moved = dict(zip(listings["category"], end - start))
    assert moved["美食"] == pytest.approx(24 * 0.012)
    assert moved["情感"] == pytest.approx(-24 * 0.015)
    assert moved["游戏"] == pytest.approx(24 * 0.008 + np.log(0.8))  # the one-off shock
    assert moved["自媒体"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("name", "months", "moved"),
    [
        ("seasonal", (3, 24), 0.0 - 0.12),  # a quarter of a year in: the swing's top
        ("seasonal", (9, 24), 0.0 + 0.12),  # three quarters: its bottom
        ("crash", (20, 24), 4 * 0.006 + np.log(0.75)),
        ("crash", (10, 20), 10 * 0.006),
        ("boom", (0, 24), 24 * 0.025),
    ],
)
def test_a_whole_market_moves_every_category_together(name, months, moved):
    market = BY_NAME[name]
    listings = market.listings(1000, seed=5)
    then, now = (market.log_typical(listings, m) for m in months)
    change = pd.Series(now - then).groupby(listings["category"].to_numpy()).mean()
    assert change["自媒体"] == pytest.approx(moved)  # a category with no rate of its own
    assert change["美食"] == pytest.approx(moved + (months[1] - months[0]) * 0.012)


def test_the_walking_market_wanders_the_same_path_on_every_draw():
    market = BY_NAME["walk"]
    listings = market.listings(200, seed=5)
    path = [market.log_typical(listings, m) - market.log_typical(listings, 0) for m in range(25)]
    still = (listings["category"] == "自媒体").to_numpy()
    moves = np.diff([p[still].mean() for p in path])
    assert moves.std() == pytest.approx(0.04, abs=0.02)
    again = market.listings(300, seed=6)
    first = (again["category"] == "自媒体").to_numpy()
    assert market.log_typical(again, 17)[first].mean() - market.log_typical(again, 0)[
        first
    ].mean() == pytest.approx(path[17][still].mean())


def test_a_small_market_with_typos_trains_with_them_screened_out():
    """A small scenario of the suite's kind: the typos are found and left out of the fit."""
    market = BY_NAME["small-skew"]
    sales = market.sales(2000, seed=6).reset_index(drop=True)
    encoder = steps.vocabulary(sales)
    best = steps.search(sales, encoder, trials=1, folds=3, seed=0)[0]
    valuer = steps.fit(sales, encoder, best, seed=0, card={}, folds=3)
    typos = int((sales["fate"] == "typo").sum())
    assert typos >= 40
    # Every typo is 10x off: nearly all are caught, and few real sales are caught with them.
    assert 0.9 * typos <= valuer.card.screened_typos <= 1.3 * typos
    truth = market.true_quantiles(sales)[0.5]
    estimate = valuer.value_frame(sales)["price_estimate"].to_numpy()
    # Skewed noise: the estimate is the median (the shift), not the mean, of log price.
    assert abs(np.median(np.log(estimate / truth))) < 0.03


def test_markets_draw_their_categories_and_flag_shares_as_declared():
    many, few = BY_NAME["many-categories"], BY_NAME["few-categories"]
    sales = many.sales(40_000, seed=2)
    assert sales["category"].nunique() == 40 == len(many.categories()[0])
    assert sales["violations"].mean() == pytest.approx(0.45, abs=0.01)
    assert sales["verified"].mean() == pytest.approx(0.30, abs=0.01)  # whatever the fans
    assert sales.groupby(sales["fans"] > 1e5)["verified"].mean().diff().abs().iloc[-1] < 0.03
    # The extra categories are the same on every draw; their premiums differ.
    assert set(many.sales(5000, seed=9)["category"]) == set(many.categories()[0])
    assert np.std(np.log(many.categories()[2][14:])) > 0.1
    assert set(few.sales(5000, seed=3)["category"]) == {"自媒体", "美食", "搞笑"}
    # The suite's rule otherwise: a share of violations 0.18, verification growing with fans.
    standard = BY_NAME["standard"].sales(40_000, seed=2)
    assert standard["violations"].mean() == pytest.approx(0.18, abs=0.01)
    by_size = standard.groupby(standard["fans"] > 1e5)["verified"].mean()
    assert by_size[True] > by_size[False] + 0.1
