"""The independent markets (data/independent.py): their truth is their real sales' quantiles,
and their exports read as a marketplace's, dates only for the dated one."""

from __future__ import annotations

import numpy as np
import pytest

from data.independent import MARKETS
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
def test_exports_read_whole_with_dates_only_for_the_dated_market(market, tmp_path):
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
