"""Tests of the simulated market (`data.simulator`): reproducible, readable, calibrated, market-logical."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.simulator import (
    CATEGORY_PREMIUM,
    generate,
    simulate_sales,
    true_quantiles,
    typical_price,
)
from valuation.loading import load_listings, parse_listings, write_table
from valuation.schema import FEATURES

TRUTH = ["true_q10", "true_q50", "true_q90"]


def test_same_seed_same_export():
    first = generate(300, seed=3, bad_share=0.05, truth=True)
    pd.testing.assert_frame_equal(first, generate(300, seed=3, bad_share=0.05, truth=True))
    assert not first.equals(generate(300, seed=4, bad_share=0.05, truth=True))


def test_clean_export_reads_back_as_the_simulated_sales(tmp_path):
    export = generate(3000, seed=7, bad_share=0.0)
    loaded = load_listings(write_table(export, tmp_path / "sales.csv"), require_price=True)
    assert loaded.rejects.empty
    assert len(loaded.listings) == loaded.total == 3000

    sales = simulate_sales(3000, seed=7)
    for column in ["fans", "violations", "live_permission", "verified", "category", "price"]:
        assert loaded.listings[column].tolist() == sales[column].tolist(), column
    assert loaded.listings["listing_id"].tolist() == sales["listing_id"].tolist()
    assert (loaded.listings["sold_at"].dt.date == sales["sold_at"]).all()


def test_bad_share_of_rows_is_rejected():
    rows, bad_share = 4000, 0.1
    clean = generate(rows, seed=9, bad_share=0.0)
    export = generate(rows, seed=9, bad_share=bad_share)
    spoiled = np.flatnonzero((clean != export).any(axis=1).to_numpy())

    loaded = parse_listings(export, require_price=True)
    assert loaded.rejects["line"].tolist() == (spoiled + 2).tolist()
    # Each spoiled row carries exactly one unreadable value.
    assert (loaded.rejects["column"].str.count(",") == 0).all()
    assert loaded.reject_share == pytest.approx(bad_share, abs=0.02)


def test_true_quantiles_are_calibrated_on_simulated_sales():
    sales = simulate_sales(50_000, seed=11)
    quantiles = true_quantiles(sales)
    assert sorted(quantiles) == [0.1, 0.5, 0.9]
    for level, values in quantiles.items():
        below = float(np.mean(sales["price"].to_numpy() < values))
        assert below == pytest.approx(level, abs=0.02), level
    assert (quantiles[0.1] < quantiles[0.5]).all() and (quantiles[0.5] < quantiles[0.9]).all()


@st.composite
def accounts(draw):
    return {
        "fans": draw(st.integers(0, 10**9)),
        "violations": draw(st.booleans()),
        "live_permission": draw(st.booleans()),
        "verified": draw(st.booleans()),
        "category": draw(st.sampled_from([*CATEGORY_PREMIUM, "未列出的类目"])),
    }


def typical(account: dict) -> float:
    return float(typical_price(*([account[f.name]] for f in FEATURES))[0])


@settings(max_examples=200, deadline=None)
@given(accounts(), st.integers(0, 10**9))
def test_typical_price_never_falls_with_more_fans(account, more):
    assert typical({**account, "fans": account["fans"] + more}) >= typical(account)


@settings(max_examples=200, deadline=None)
@given(accounts())
def test_typical_price_follows_the_flag_directions(account):
    assert typical({**account, "violations": True}) < typical({**account, "violations": False})
    assert typical({**account, "live_permission": True}) > typical(
        {**account, "live_permission": False}
    )
    assert typical({**account, "verified": True}) > typical({**account, "verified": False})


def test_typical_price_is_vectorised_and_non_decreasing_on_a_fans_grid():
    fans = np.unique(np.round(np.logspace(0, 9, 400)).astype(np.int64))
    n = len(fans)
    prices = typical_price(fans, [True] * n, [True] * n, [False] * n, ["美食"] * n)
    assert prices.shape == (n,)
    assert (np.diff(prices) >= 0).all()


def test_truth_columns_only_when_asked(tmp_path):
    plain = generate(200, seed=2)
    assert not set(TRUTH) & set(plain.columns)
    export = generate(200, seed=2, bad_share=0.0, truth=True)
    assert list(export.columns[-3:]) == TRUTH
    pd.testing.assert_frame_equal(export.drop(columns=TRUTH), generate(200, seed=2, bad_share=0.0))
    assert (export["true_q10"] <= export["true_q50"]).all()
    assert (export["true_q50"] <= export["true_q90"]).all()

    expected = true_quantiles(simulate_sales(200, seed=2))
    np.testing.assert_allclose(export["true_q50"], np.round(expected[0.5], 2))
    # The truth travels as extra columns: the export still loads, and keeps them in `raw`.
    loaded = load_listings(write_table(export, tmp_path / "truth.csv"), require_price=True)
    assert loaded.rejects.empty
    assert list(loaded.raw.columns[-3:]) == TRUTH
