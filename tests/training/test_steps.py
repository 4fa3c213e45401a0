"""Tests of the training steps as plain functions: no MLflow, no disk, tiny simulated markets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from data.markets import BY_NAME
from data.simulator import generate, simulate_sales
from training import steps
from training.evaluation import (
    BASELINES,
    FansBandMedian,
    LogLinear,
    interval_coverage,
    price_errors,
)
from valuation.curve import PriceCurve
from valuation.encoding import CATEGORY_COLUMN, FANS_COLUMN, FLAG_COLUMNS
from valuation.loading import parse_listings
from valuation.valuer import Valuer, fans_band

# The default candidate, so a fit takes a fraction of a second.
FIXED_TRIAL = steps.Trial(params=dict(steps.CANDIDATES[0]), cv_l1=0.0, rounds=200)


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    """800 typed, canonical sales read from the marketplace's spellings, all readable."""
    return parse_listings(generate(800, seed=3, bad_share=0.0), require_price=True).listings


# validate ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded_with_rejects():
    loaded = parse_listings(generate(300, seed=4, bad_share=0.1), require_price=True)
    assert 0.03 < loaded.reject_share < 0.2, "the fixture needs a visible reject share"
    return loaded


def test_validate_refuses_when_the_reject_share_is_above_the_limit(loaded_with_rejects):
    loaded = loaded_with_rejects
    with pytest.raises(steps.TooManyRejects) as refusal:
        steps.validate(loaded, max_reject_share=loaded.reject_share - 0.001)
    assert f"{len(loaded.rejects)} of {loaded.total} rows" in str(refusal.value)


def test_validate_passes_the_usable_sales_at_or_below_the_limit(loaded_with_rejects):
    loaded = loaded_with_rejects
    for limit in (loaded.reject_share, loaded.reject_share + 0.05):
        sales = steps.validate(loaded, max_reject_share=limit)
        assert len(sales) == loaded.total - len(loaded.rejects)
        assert sales.index.equals(loaded.listings.index)


def test_validate_refuses_too_few_usable_sales():
    loaded = parse_listings(generate(40, seed=1, bad_share=0.0), require_price=True)
    assert len(loaded.rejects) == 0
    with pytest.raises(steps.TooManyRejects, match="too few"):
        steps.validate(loaded, max_reject_share=1.0)


# split ---------------------------------------------------------------------------------------


def test_split_holds_out_the_most_recent_sales_when_dates_are_known(market):
    held = steps.split(market, holdout_share=0.2, seed=0)
    assert held.by == "time"
    assert len(held.holdout) == round(len(market) * 0.2)
    assert len(held.train) + len(held.holdout) == len(market)
    assert held.train.index.intersection(held.holdout.index).empty
    assert held.holdout["sold_at"].min() >= held.train["sold_at"].max()


def test_split_puts_sales_without_a_date_in_training(market):
    sales = market.copy()
    sales.loc[sales.index[:100], "sold_at"] = pd.NaT  # a minority of rows lack a date
    held = steps.split(sales, holdout_share=0.2, seed=0)
    assert held.by == "time"
    assert held.holdout["sold_at"].notna().all()
    assert held.holdout["sold_at"].min() >= held.train["sold_at"].max()


@pytest.mark.parametrize("dates", ["absent", "mostly missing"])
def test_split_is_random_and_seeded_without_dates(market, dates):
    sales = market.drop(columns="sold_at")
    if dates == "mostly missing":
        sales = market.copy()
        sales.loc[sales.index[:500], "sold_at"] = pd.NaT
    first = steps.split(sales, holdout_share=0.25, seed=7)
    again = steps.split(sales, holdout_share=0.25, seed=7)
    other = steps.split(sales, holdout_share=0.25, seed=8)

    assert first.by == "random"
    assert len(first.holdout) == 200
    assert first.train.index.union(first.holdout.index).equals(sales.index)
    assert first.holdout.index.equals(again.holdout.index)
    assert not first.holdout.index.equals(other.holdout.index)
    # Random, not the file's tail nor its head.
    assert not first.holdout.index.equals(sales.index[-200:])
    assert not first.holdout.index.equals(sales.index[:200])


# search --------------------------------------------------------------------------------------


def test_search_cross_fits_the_first_candidates_and_puts_the_chosen_one_first(market):
    seen = []
    ranked = steps.search(
        market, steps.vocabulary(market), trials=3, folds=2, seed=0, on_trial=seen.append
    )
    assert len(ranked) == 3
    assert [t.params for t in seen] == [dict(c) for c in steps.CANDIDATES[:3]]
    assert sum(t.chosen for t in ranked) == 1 and ranked[0].chosen
    for trial in ranked:
        assert 1 <= trial.rounds < steps.MAX_ROUNDS, "early stopping decides, not the cap"
        assert 0 < trial.cv_l1 < 1  # L1 on log price of a market with ~0.2-0.4 log noise
        assert trial.estimate.shape == (len(market),)
    if ranked[0] is not seen[0]:
        # Another candidate displaced the default only by beating it clearly.
        assert ranked[0].cv_l1 < seen[0].cv_l1


def test_search_judges_candidates_learning_without_the_price_typos(market):
    """Each candidate's models learn only from the screened sales, as the served model does: its
    estimates are those of a cross-fit that never saw the typos (a model trained with them would
    favour losses that shrug them off)."""
    sales = market.copy()
    typos = np.zeros(len(sales), dtype=bool)
    typos[::25] = True  # 4% of the sales, priced with an extra zero
    sales.loc[typos, "price"] *= 10
    encoder = steps.vocabulary(sales)
    ranked = steps.search(sales, encoder, trials=2, folds=3, seed=0)
    learn = ranked[0].learn
    assert not learn[typos].any() and learn.mean() > 0.9  # every injected typo screened out
    assert all(np.array_equal(trial.learn, learn) for trial in ranked)
    matrix, log_price = encoder.matrix(sales), np.log(sales["price"].to_numpy())
    for trial in ranked:
        # Its fans curve, too, is fitted on the screened sales alone.
        assert trial.curve == steps.curve_for(
            trial.params, matrix, log_price, len(encoder.categories), learn
        )
        dataset = steps.learning_set(matrix, log_price, trial.curve, trial.weight)
        clean, rounds = steps.cross_fit(dataset, trial.params, 3, seed=0, learn=learn)
        np.testing.assert_allclose(trial.estimate, clean)
        assert trial.rounds == rounds
    # `fit` serves the chosen one from that very cross-fit: no typo in what its models learned.
    valuer = steps.fit(sales, encoder, ranked[0], seed=0, card={}, folds=3)
    assert valuer.card.screened_typos >= typos.sum()
    assert valuer.card.params["rounds"] == ranked[0].rounds


@pytest.mark.parametrize("distinct", [1, 2, 40])
def test_the_price_curve_is_finite_and_non_decreasing_whatever_the_fans(market, distinct):
    """Even an export whose accounts all have the same fans (or two counts) gives a curve the
    booster can start from: finite everywhere, non-decreasing, flat where nothing is known."""
    sales = market.copy()
    counts = np.geomspace(1_000, 1_000_000, distinct)
    sales["fans"] = counts[np.arange(len(sales)) % distinct].round()
    encoder = steps.vocabulary(sales)
    matrix = encoder.matrix(sales)
    curve = steps.price_curve(matrix, np.log(sales["price"].to_numpy()), 0.8, encoder.unknown_code)
    probe = matrix[:50].copy()
    probe[:, 0] = np.geomspace(1, 10**10, 50)
    values = curve.fans_part(probe[:, 0])
    assert np.isfinite(curve(matrix)).all() and np.isfinite(values).all()
    assert np.all(np.diff(values) >= 0)


def test_the_price_curve_keeps_rising_where_few_sales_inform_it():
    """The largest accounts are few: the ridge's shrinkage pulls the spline towards a line there,
    not towards flat (it did, and accounts of 10^6.8+ fans were valued ~42% low), and past the
    most fans of any sale the curve rises at that slope for a decade, then stays."""
    sales = simulate_sales(3_000, seed=5)
    encoder = steps.vocabulary(sales)
    matrix = encoder.matrix(sales)
    curve = steps.price_curve(matrix, np.log(sales["price"].to_numpy()), 1.0, encoder.unknown_code)
    low, middle, high = np.log10(sales["fans"].quantile([0.25, 0.75, 1.0]).to_numpy())

    def slope(a, b):
        return float(curve.fans_part(10**b) - curve.fans_part(10**a)) / (b - a)

    assert slope(high - 0.5, high) > 0.6 * slope(low, middle) > 0
    assert curve.beyond_slope == pytest.approx(slope(high - 0.5, high), rel=0.05)
    top = 10**high
    assert curve.fans_part(top * 10) == pytest.approx(curve.fans_part(top) + curve.beyond_slope)
    assert curve.fans_part(top * 1_000) == curve.fans_part(top * 20)
    lowest = sales["fans"].min()
    assert curve.fans_part(lowest / 10) == curve.fans_part(lowest)  # flat below: the base price


def test_above_the_largest_sales_the_curve_carries_the_whole_rise_in_fans():
    """Where the trees' leaves are too few to follow the slope (above the SPARSE_TOP_SALES-th
    largest sale), a curve at a share of the fans effect still rises as the whole curve does;
    below, it rises by its share."""
    sales = simulate_sales(3_000, seed=5)
    encoder = steps.vocabulary(sales)
    matrix = encoder.matrix(sales)
    log_price = np.log(sales["price"].to_numpy())
    whole = steps.price_curve(matrix, log_price, 1.0, encoder.unknown_code)
    share = steps.price_curve(matrix, log_price, 0.9, encoder.unknown_code)
    ordered = np.sort(sales["fans"].to_numpy())
    sparse, top = ordered[-steps.SPARSE_TOP_SALES], ordered[-1]
    middle = np.quantile(ordered, [0.25, 0.75])

    def rise(curve, a, b):
        return float(curve.fans_part(b) - curve.fans_part(a))

    assert rise(whole, sparse, top) > 0.1
    assert rise(share, sparse, top) == pytest.approx(rise(whole, sparse, top), rel=0.01)
    assert rise(share, *middle) == pytest.approx(0.9 * rise(whole, *middle), rel=0.01)


def test_the_largest_accounts_are_not_valued_low():
    """Accounts of 15 million fans, valued against the truth and beside accounts of 10万 fans (so
    the market's level cancels), on two draws of a 3,000-sale market: with the trees carrying a
    share of the fans effect where they had a leaf or two, they were ~17% low (log -0.21 and
    -0.17); now ~7% (-0.07 and -0.08)."""
    from data.markets import BY_NAME

    market = BY_NAME["small-skew"]
    gaps = []
    for seed in (3, 4):
        sales = market.sales(market.rows, seed).drop(columns=["fate"]).reset_index(drop=True)
        valuer = steps.fit(sales, steps.vocabulary(sales), FIXED_TRIAL, seed, card={}, folds=5)
        accounts = sales.iloc[[0, 0]].reset_index(drop=True)
        accounts["fans"] = [100_000, 15_000_000]
        estimate = valuer.value_frame(accounts)["price_estimate"].to_numpy()
        gap = np.log(estimate / market.true_quantiles(accounts)[0.5])
        gaps.append(gap[1] - gap[0])
    assert np.mean(gaps) > -0.12


def test_search_keeps_the_default_when_the_others_are_not_clearly_better(market):
    """A second configuration that differs by a hair: its differences are noise, not a win."""
    twice = (steps.CANDIDATES[0], {**steps.CANDIDATES[0], "lambda_l2": 1.1})
    original = steps.CANDIDATES
    steps.CANDIDATES = twice
    try:
        ranked = steps.search(market, steps.vocabulary(market), trials=2, folds=3, seed=0)
    finally:
        steps.CANDIDATES = original
    assert ranked[0].params == dict(twice[0])


ADDITIVE = next(c for c in steps.CANDIDATES if "interaction_constraints" in c)
ADDITIVE_TRIAL = steps.Trial(params=dict(ADDITIVE), cv_l1=0.0, rounds=300)


def test_the_additive_candidate_prices_each_feature_on_its_own_curve(market):
    """Its trees split on one feature each, so a flag moves the log estimate by the same amount
    at every fans count and in every category."""
    assert ADDITIVE["interaction_constraints"] == steps.ADDITIVE
    valuer = steps.fit(market, steps.vocabulary(market), ADDITIVE_TRIAL, seed=0, card={})
    trees = valuer.boosters["point"].dump_model()["tree_info"]

    def features(node):
        if "split_feature" not in node:
            return set()
        return (
            {node["split_feature"]} | features(node["left_child"]) | features(node["right_child"])
        )

    assert all(len(features(tree["tree_structure"])) <= 1 for tree in trees)
    listings = market.head(50).copy()
    moved = listings.assign(violations=~listings["violations"])
    point, encoder = valuer.boosters["point"], valuer.encoder
    step = point.predict(encoder.matrix(moved)) - point.predict(encoder.matrix(listings))
    sign = np.where(listings["violations"], -1.0, 1.0)  # the step from clean to violated
    assert np.ptp(step * sign) < 1e-9
    assert (step * sign).max() <= 0  # and monotone: a violation never raises the price


@pytest.mark.parametrize(("name", "chosen"), [("small-skew", 1), ("flag-growth", 0)])
def test_search_takes_the_additive_model_only_where_the_market_has_no_interactions(
    name, chosen, monkeypatch
):
    """3,000 simulated sales: without interactions the additive candidate beats trees that may
    interact beyond noise; where flag effects grow with the account, those keep their place."""
    from data.markets import BY_NAME

    trees = next(c for c in steps.CANDIDATES if steps.PRICE_CURVE not in c and c is not ADDITIVE)
    monkeypatch.setattr(steps, "CANDIDATES", (trees, ADDITIVE))
    sales = BY_NAME[name].sized(3000).sales(3000, 1).reset_index(drop=True)
    ranked = steps.search(sales, steps.vocabulary(sales), trials=2, folds=5, seed=0)
    assert ranked[0].params == dict(steps.CANDIDATES[chosen])


def test_search_keeps_the_default_share_of_the_curve_where_nothing_bends_it(monkeypatch):
    """3,000 simulated sales of small-skew: the default's 0.9 of the curve keeps its place."""
    from data.markets import BY_NAME

    monkeypatch.setattr(steps, "CANDIDATES", steps.CANDIDATES[:2])
    assert [c[steps.PRICE_CURVE] for c in steps.CANDIDATES] == [0.9, 0.8]
    sales = BY_NAME["small-skew"].sales(3000, 1).reset_index(drop=True)
    ranked = steps.search(sales, steps.vocabulary(sales), trials=2, folds=5, seed=0)
    assert ranked[0].params[steps.PRICE_CURVE] == 0.9


def _curve_inputs(market, rows: int):
    """A market's real sales (its typos left out: not sales), their vocabulary, model matrix and
    log price: what `steps.price_curve` is fitted on."""
    sales = market.sales(rows, 1)
    sales = sales[sales["fate"] != "typo"].drop(columns="fate").reset_index(drop=True)
    encoder = steps.vocabulary(sales)
    return sales, encoder, encoder.matrix(sales), np.log(sales["price"].to_numpy())


@pytest.mark.parametrize("name", ["flag-growth", "standard"])
def test_the_curves_flag_parts_follow_a_discount_that_grows_with_the_account(name):
    """3,000 simulated sales. Where a violation's discount deepens with the account (flag-growth:
    its log effect at 1,000 fans is a quarter of that at 1,000,000), the curve's violation part
    deepens with fans; where it does not (standard), it stays level. Either way it is FLAG_SHARE
    of the discount or less, never a premium, and the curve stays non-decreasing in fans with
    any set of flags."""
    from itertools import product

    from data.markets import BY_NAME

    market = BY_NAME[name]
    _, encoder, matrix, log_price = _curve_inputs(market, 3000)
    curve = steps.price_curve(matrix, log_price, 0.9, encoder.unknown_code)
    small, large = curve.flag_parts(np.array([1e3, 1e6]))[0]
    truth = np.log(market.violation_discount) * steps.FLAG_SHARE  # at 1万 fans
    if market.flag_growth:
        assert large < 3 * small < 0  # truth: 0.5x and 2x the discount at 1万 fans
        assert large == pytest.approx(2 * truth, rel=0.2)
    else:
        assert small == pytest.approx(truth, rel=0.2) and large == pytest.approx(truth, rel=0.2)
    assert np.all(np.asarray(curve.flags[0]) <= 0)
    assert all(np.all(np.asarray(part) >= 0) for part in curve.flags[1:])
    level = np.asarray(curve.level)
    for chosen in product([0, 1], repeat=len(curve.flags)):
        with_flags = level + sum(np.asarray(part) * on for part, on in zip(curve.flags, chosen))
        assert np.all(np.diff(with_flags) >= -1e-5)  # the card keeps 6 decimals


def test_the_curve_s_flags_differ_by_category_where_asked_each_kept_to_its_sign():
    """category-flags: a violation costs the first categories' accounts x0.36 and the last
    ones' x0.85. The curve's category shares of the discount follow, and the discount stays a
    discount in every category at any fans; the curve prices a row as `one` does, and its
    parts' contributions add up to it."""
    from data.markets import BY_NAME

    market = BY_NAME["category-flags"]
    sales, encoder, matrix, log_price = _curve_inputs(market, 6000)
    plain = steps.price_curve(matrix, log_price, 0.9, encoder.unknown_code)
    curve = steps.price_curve(matrix, log_price, 0.9, encoder.unknown_code, by_category=True)
    assert plain.flag_category == () and len(curve.flag_category) == len(curve.flags)

    names = list(market.categories()[0])
    costliest, mildest = (
        encoder.matrix(sales.iloc[:1].assign(category=n))[0] for n in names[:: len(names) - 1]
    )
    fans = np.array([3e3, 3e4, 3e5])
    violation = [curve.flag_parts_in(fans, row[CATEGORY_COLUMN])[0] for row in (costliest, mildest)]
    assert np.all(violation[0] < violation[1] - 0.3)  # truth: 0.85 log apart
    grid = np.asarray(curve.log10_fans)
    for code in range(encoder.unknown_code + 1):
        parts = curve.flag_parts_in(10**grid, code)
        assert np.all(parts[0] <= 1e-6) and all(np.all(p >= -1e-6) for p in parts[1:])
    unknown = curve.flag_parts_in(fans, encoder.unknown_code)
    np.testing.assert_allclose(unknown, curve.flag_parts(fans))

    rows = matrix[:200]
    np.testing.assert_allclose(curve(rows), [curve.one(row) for row in rows], atol=1e-9)
    parts = np.array([curve.contributions(row) for row in rows])
    np.testing.assert_allclose(parts.sum(axis=1) + sum(curve.reference), curve(rows), atol=1e-9)
    assert PriceCurve.from_card(curve.as_card()) == curve


def test_the_curve_s_categories_bend_with_fans_where_asked_and_it_still_rises_in_each():
    """category-bends: each category's log price rises with ln fans at its own rate, spread
    -0.25 to +0.25 across the categories (x0.56 to x1.78 a decade beside the common rise). The
    curve's slopes follow, every category's curve stays non-decreasing in fans whatever its
    flags, a row is priced as `one` prices it, its parts' contributions add up to it, and the
    card holds it whole. Without the option the curve has no slopes."""
    market = BY_NAME["category-bends"]
    sales, encoder, matrix, log_price = _curve_inputs(market, 4000)
    plain = steps.price_curve(matrix, log_price, 0.9, encoder.unknown_code)
    assert plain.category_slope == ()
    curve = steps.price_curve(matrix, log_price, 0.9, encoder.unknown_code, bends_by_category=True)
    names = list(market.categories()[0])
    code_of = {
        name: int(encoder.matrix(sales.iloc[:1].assign(category=name))[0, CATEGORY_COLUMN])
        for name in names
    }
    slope_of = {name: curve.category_slope[code] for name, code in code_of.items()}
    truth = dict(zip(names, np.linspace(-0.25, 0.25, len(names)) * np.log(10), strict=True))
    # per decade of fans: the truth's ln-slope times ln 10; shrunk, but in the truth's order
    assert np.corrcoef(list(slope_of.values()), list(truth.values()))[0, 1] > 0.9
    assert slope_of[names[-1]] - slope_of[names[0]] > 0.5 * (truth[names[-1]] - truth[names[0]])

    grid = np.asarray(curve.log10_fans)
    fans = 10 ** np.linspace(grid[0] - 1, grid[-1] + 0.5, 400)
    for code in range(encoder.unknown_code + 1):
        for flags in ((0, 0, 0), (1, 0, 0), (0, 1, 1), (1, 1, 1)):
            rows = np.zeros((len(fans), matrix.shape[1]))
            rows[:, FANS_COLUMN], rows[:, CATEGORY_COLUMN] = fans, code
            rows[:, list(FLAG_COLUMNS)] = flags
            assert np.all(np.diff(curve(rows)) >= -1e-9), (code, flags)
    unknown = curve.category_part([encoder.unknown_code] * 3, [1e3, 1e4, 1e5])
    np.testing.assert_allclose(unknown, 0.0)

    rows = matrix[:200]
    assert [curve.one(row) for row in rows] == list(curve(rows))
    parts = np.array([curve.contributions(row) for row in rows])
    np.testing.assert_allclose(parts.sum(axis=1) + sum(curve.reference), curve(rows), atol=1e-9)
    assert PriceCurve.from_card(curve.as_card()) == curve


@pytest.mark.parametrize(
    ("name", "rows", "seed", "chosen"),
    [("category-bends", 4000, 1, True), ("small-skew", 3000, 2, False)],
)
def test_search_bends_the_curve_by_category_only_where_categories_bend(
    name, rows, seed, chosen, monkeypatch, tmp_path
):
    """category-bends: the curve whose categories rise with fans at their own rates wins the
    comparison beyond noise (today's ten candidates valued this market at 1.12x the true
    median's MdAPE, in process, seeds 1-2; with it 1.03); on small-skew, whose categories rise
    alike, the default keeps its place."""
    bending = next(c for c in steps.CANDIDATES if c.get(steps.CATEGORY_SLOPE))
    assert {k: v for k, v in bending.items() if k != steps.CATEGORY_SLOPE} == steps.CANDIDATES[0]
    monkeypatch.setattr(steps, "CANDIDATES", (steps.CANDIDATES[0], bending))
    sales = BY_NAME[name].sales(rows, seed).reset_index(drop=True)
    encoder = steps.vocabulary(sales)
    ranked = steps.search(sales, encoder, trials=2, folds=5, seed=seed)
    assert bool(ranked[0].params.get(steps.CATEGORY_SLOPE)) is chosen
    if chosen:  # served as searched: the slopes on the card, the same prices once reloaded
        valuer = steps.fit(sales, encoder, ranked[0], seed, {}, 5)
        assert valuer.card.price_curve.category_slope
        assert steps.CATEGORY_SLOPE not in steps.booster_params(ranked[0].params, seed)
        again = Valuer.load(valuer.save(tmp_path / "bent"))
        assert again.curve == valuer.curve
        listings = sales.drop(columns=["fate", "price"]).iloc[:300]
        pd.testing.assert_frame_equal(again.value_frame(listings), valuer.value_frame(listings))


def test_search_takes_additive_trees_on_the_curve_where_they_value_closer(monkeypatch):
    """noisy-t3's fifth draw (3,000 sales, t3 noise): the trees the default grows on the curve
    learn noise there; additive trees on the same curve win the comparison beyond noise and value
    new listings closer to the true median (MdAPE / true 1.027 -> 1.020 in process)."""
    on_curve = next(
        c for c in steps.CANDIDATES if "interaction_constraints" in c and c.get(steps.PRICE_CURVE)
    )
    monkeypatch.setattr(steps, "CANDIDATES", (steps.CANDIDATES[0], on_curve))
    market = BY_NAME["noisy-t3"]
    sales = market.sales(3000, 5).drop(columns=["fate"]).reset_index(drop=True)
    encoder = steps.vocabulary(sales)
    ranked = steps.search(sales, encoder, trials=2, folds=5, seed=5)
    assert ranked[0].params == on_curve
    new = market.sales(5000, 1005, unseen=True, at_end=True)
    new = new[new["fate"] != "typo"].drop(columns=["fate"]).reset_index(drop=True)
    truth = np.log(market.true_quantiles(new)[0.5])

    def error(trial):
        valuer = steps.fit(sales, encoder, trial, 5, {}, 5)
        return np.sqrt(np.mean((np.log(valuer.value_frame(new)["price_estimate"]) - truth) ** 2))

    assert error(ranked[0]) < error(ranked[1])


def test_cross_fit_estimates_each_sale_from_models_that_did_not_see_it(market):
    encoder = steps.vocabulary(market)
    log_price = np.log(market["price"].to_numpy())
    dataset = steps.learning_set(encoder.matrix(market), log_price)
    estimate, rounds = steps.cross_fit(dataset, steps.CANDIDATES[0], 4, seed=0)
    in_sample = steps.fit(market, encoder, FIXED_TRIAL, seed=0, card={})
    fitted = np.log(in_sample.value_frame(market)["price_estimate"].to_numpy())
    # Out of fold, the errors are larger than in sample: the sale itself was not learned.
    assert np.median(np.abs(log_price - estimate)) > np.median(np.abs(log_price - fitted))
    assert 1 <= rounds < steps.MAX_ROUNDS


# fit and evaluate ----------------------------------------------------------------------------


def test_fit_gives_a_valuer_with_ordered_ranges_and_its_card(market):
    valuer = steps.fit(market, steps.vocabulary(market), FIXED_TRIAL, seed=0, card={"data_rows": 1})
    assert isinstance(valuer, Valuer)
    assert valuer.card.data_rows == 1
    assert valuer.card.training_rows == len(market)
    assert 1 <= valuer.card.params["rounds"] < steps.MAX_ROUNDS  # early stopping's choice
    assert valuer.card.screened_typos >= 0
    priced = valuer.value_frame(market)
    assert (priced["price_low"] <= priced["price_estimate"]).all()
    assert (priced["price_estimate"] <= priced["price_high"]).all()


def test_a_dated_export_s_ranges_hold_its_categories_restatement_error():
    """The same restated sales and point model, calibrated with and without the market index on
    the card: with it, each calibration sale's residual is spread by its category's
    restatement error, so every band's 80% range is wider (a quote at the market date carries
    that error; a sale's own residual does not)."""
    market = BY_NAME["drifting"].sized(1500)
    sales = market.sales(market.rows, seed=4).drop(columns=["fate"]).reset_index(drop=True)
    encoder = steps.vocabulary(sales)
    index = steps.market_index(sales, encoder, folds=3, seed=0)
    restated = steps.restated(sales, index)
    ranges = {}
    for name, card in (("with", steps.with_market({}, index)), ("without", {})):
        valuer = steps.fit(restated, encoder, FIXED_TRIAL, seed=0, card=card, folds=3)
        z = np.array(valuer.card.residual_z_by_band)
        p = np.array(valuer.card.residual_p)
        ranges[name] = z[:, np.isclose(p, 0.9)][:, 0] - z[:, np.isclose(p, 0.1)][:, 0]
    assert (ranges["with"] > ranges["without"]).all()


def test_evaluate_reports_the_model_and_both_baselines(market):
    held = steps.split(market, holdout_share=0.2, seed=0)
    valuer = steps.fit(held.train, steps.vocabulary(held.train), FIXED_TRIAL, 0, {})
    evaluation = steps.evaluate(valuer, held)
    report = evaluation.metrics
    assert set(report) == {"model", *BASELINES}
    predictions = evaluation.predictions
    assert len(predictions) == len(held.holdout)
    assert predictions["price"].tolist() == held.holdout["price"].tolist()
    assert {"price_estimate", "price_low", "price_high", *BASELINES} <= set(predictions)
    assert 0 <= report["model"]["interval_coverage"] <= 1
    actual = held.holdout["price"].to_numpy()
    expected = price_errors(actual, valuer.value_frame(held.holdout)["price_estimate"])
    assert report["model"]["mdape"] == pytest.approx(expected["mdape"])
    # On a simulated market the model should beat the fans-band median.
    assert report["model"]["mdape"] < report["baseline_fans_band"]["mdape"]


def test_a_price_typo_barely_moves_the_estimates_of_its_neighbours():
    sales = simulate_sales(800, seed=11)
    encoder = steps.vocabulary(sales)
    plain = (
        ~sales["violations"]
        & ~sales["live_permission"]
        & ~sales["verified"]
        & (sales["category"] == "自媒体")
    )
    target = sales.index[plain & sales["fans"].between(5_000, 50_000)][0]
    fans = sales.loc[target, "fans"]
    neighbours = sales[plain & sales["fans"].between(fans / 1.5, fans * 1.5)]
    assert len(neighbours) >= 5

    with_typo = sales.copy()
    with_typo.loc[target, "price"] *= 1000  # an extra three zeros

    clean = steps.fit(sales, encoder, FIXED_TRIAL, seed=0, card={})
    typo = steps.fit(with_typo, encoder, FIXED_TRIAL, seed=0, card={})
    change = (
        typo.value_frame(neighbours)["price_estimate"]
        / clean.value_frame(neighbours)["price_estimate"]
        - 1
    ).abs()
    # A least-squares fit moves these neighbours by about 50%.
    assert change.median() < 0.04
    assert change.max() < 0.08


def test_a_sale_far_from_its_estimate_teaches_less_as_its_own_band_measures_far():
    """Huber's weights, each fans band at its own spread: the same residual is an ordinary sale of
    a noisy band and a far one of a quiet band; a typo's shape teaches nothing."""
    rng = np.random.default_rng(2)
    noisy, quiet = rng.normal(0.0, 0.4, 3_000), rng.normal(0.0, 0.1, 3_000)
    residual = np.concatenate([noisy, quiet, [0.3, 0.3, 0.8, 2.0]])
    fans = np.concatenate(
        [np.full(3_000, 3_000), np.full(3_000, 300_000), [3_000, 300_000, 300_000, 300_000]]
    )
    weight = steps.sale_weights(residual, fans)
    noisy_one, quiet_one, quiet_far, typo = weight[-4:]
    assert noisy_one == 1.0  # under one spread of its band
    reach = steps.HUBER_SPREADS * 0.1  # the quiet band's spread is ~0.1
    assert quiet_one == pytest.approx(reach / 0.3, rel=0.1)
    assert quiet_far == pytest.approx(reach / 0.8, rel=0.1) and quiet_far < quiet_one
    assert typo == 0.0 and not steps.is_sale(np.array([2.0]))[0]
    within = np.abs(quiet) < 0.1  # within a spread: the full weight
    assert (weight[3_000:6_000][within] == 1.0).all()
    assert ((weight > 0) == steps.is_sale(residual)).all()


def test_a_sample_s_reach_weighs_sales_it_did_not_hold_as_their_own_would():
    """The Dask engine weighs the cluster's sales against Huber's reach read off a client-side
    sample: a large enough sample gives the sales the weights their own reach gives them."""
    rng = np.random.default_rng(3)
    residual = np.concatenate([rng.normal(0.0, 0.4, 20_000), rng.normal(0.1, 0.1, 20_000)])
    fans = np.concatenate([np.full(20_000, 3_000), np.full(20_000, 300_000)])
    residual[::97] = 2.5  # price typos
    own = steps.sale_weights(residual, fans)
    assert steps.sale_weights(residual, fans, steps.huber_reach(residual, fans)).tolist() == (
        own.tolist()
    )
    sample = rng.random(len(residual)) < 0.2
    reach = steps.huber_reach(residual[sample], fans[sample])
    small, large = fans_band(np.array([3_000, 300_000]))
    (centre, quiet), (_, noisy) = reach[large], reach[small]
    assert centre == pytest.approx(0.1, abs=0.01) and quiet < noisy / 3
    others = steps.sale_weights(residual[~sample], fans[~sample], reach)
    assert np.abs(others - own[~sample]).max() < 0.05
    assert (others[residual[~sample] == 2.5] == 0).all()  # typos teach nothing
    assert ((others == 0) == ~steps.is_sale(residual[~sample])).all()


def test_a_band_of_identical_residuals_keeps_every_sale_whole():
    weight = steps.sale_weights(np.r_[np.zeros(50), 0.5], np.full(51, 10_000))
    np.testing.assert_array_equal(weight, np.ones(51))


def test_sales_far_from_the_going_price_pull_the_served_estimate_less():
    """A few accounts sold at 2.5x their neighbours' price (inside the typo screen: real sales,
    say a bidding war): the served model, weighted, follows them less than least squares does."""
    sales = simulate_sales(1_500, seed=12)
    encoder = steps.vocabulary(sales)
    band = sales["fans"].between(20_000, 40_000)
    lifted = sales.copy()
    lifted.loc[sales.index[band][::4], "price"] *= 2.5
    weighted = steps.fit(lifted, encoder, FIXED_TRIAL, seed=0, card={})
    clean = steps.fit(sales, encoder, FIXED_TRIAL, seed=0, card={})
    try:
        huber, steps.HUBER_SPREADS = steps.HUBER_SPREADS, math.inf
        plain = steps.fit(lifted, encoder, FIXED_TRIAL, seed=0, card={})
    finally:
        steps.HUBER_SPREADS = huber
    listings = sales[band]

    def lift(valuer):
        ratio = (
            valuer.value_frame(listings)["price_estimate"]
            / clean.value_frame(listings)["price_estimate"]
        )
        return float(np.median(ratio))

    assert 1.0 < lift(weighted) < lift(plain) - 0.03


def test_a_quiet_band_calibrates_on_its_sales_alone_and_a_typo_stays_out():
    rng = np.random.default_rng(0)
    fans = np.full(2_000, 50_000)
    residual = rng.normal(0.0, 0.2, 2_000)
    residual[:20] = np.log(10) + rng.normal(0.0, 0.2, 20)  # an extra zero
    np.testing.assert_array_equal(steps.calibrates(residual, fans), steps.is_sale(residual))
    assert not steps.calibrates(residual, fans)[:20].any()


def test_a_noisy_band_calibrates_on_its_real_tails_beyond_the_typo_screen():
    """Small accounts of a heavy-tailed market: real sales reach past TYPO_LOG. They calibrate the
    ranges (not the point model), up to TAIL_CAP; a residual far beyond the band's own spread
    does not."""
    rng = np.random.default_rng(1)
    noisy = rng.standard_t(3, 4_000) * 0.45  # median |r| ~0.34: 8 deviations ~2.7
    quiet = rng.normal(0.0, 0.15, 4_000)
    residual = np.concatenate([noisy, quiet, [6.0, -6.0]])
    fans = np.concatenate([np.full(4_000, 3_000), np.full(4_000, 500_000), [3_000, 3_000]])
    tail = (np.abs(residual) > steps.TYPO_LOG) & (np.abs(residual) <= steps.TAIL_CAP)
    assert tail[:4_000].sum() > 50, "the noisy band needs real sales past the typo screen"
    kept = steps.calibrates(residual, fans)
    assert kept[:4_000][tail[:4_000]].all()
    assert not steps.is_sale(residual)[:4_000][tail[:4_000]].any()
    assert not kept[-2:].any()  # 6 log points (400x): a typo's shape whatever the band
    assert steps.TAIL_SPREADS * np.median(np.abs(noisy)) > np.log(10)  # the band reaches 10x
    np.testing.assert_array_equal(kept[4_000:8_000], steps.is_sale(residual[4_000:8_000]))


def test_an_extra_zero_never_calibrates_even_in_the_noisiest_band():
    rng = np.random.default_rng(3)
    residual = rng.standard_t(3, 2_000) * 0.7  # 8 deviations ~4.3 log points
    residual[:40] = np.log(10) * np.sign(rng.normal(size=40))  # an extra or a missing zero
    kept = steps.calibrates(residual, np.full(2_000, 2_000))
    assert not kept[:40].any()
    assert kept[40:][np.abs(residual[40:]) <= steps.TAIL_CAP].all()


def test_a_band_whose_tail_is_heavy_calibrates_further_out_than_a_normal_one():
    """t2 noise: more than HEAVY_TAIL_SHARE of the band lie 4-8 deviations out, and its real sales
    between 8 and 12 deviations calibrate. Normal noise: its sales past 8 deviations (planted,
    of a typo's shape in so quiet a band) stay out."""
    rng = np.random.default_rng(4)
    heavy = rng.standard_t(2, 4_000) * 0.2  # median |r| ~0.16: 8 deviations 1.3, 12 2.0
    normal = rng.normal(0.0, 0.25, 4_000)
    normal[:40] = rng.uniform(1.5, 1.95, 40) * np.sign(rng.normal(size=40))
    fans = np.concatenate([np.full(4_000, 3_000), np.full(4_000, 500_000)])
    kept = steps.calibrates(np.concatenate([heavy, normal]), fans)
    spread = np.median(np.abs(heavy - np.median(heavy)))
    beyond = (np.abs(heavy) > 8.2 * spread) & (np.abs(heavy) < 11.8 * spread)
    assert beyond.sum() > 20 and kept[:4_000][beyond].all()
    assert not kept[4_000:4_040].any()
    assert kept[4_040:].all()


def test_the_holdout_coverage_sets_aside_what_the_calibration_sets_aside():
    """A noisy band's real tails past TYPO_LOG count against the range (the gate would read a
    flattering coverage without them); a typo-shaped sale in a quiet band does not."""
    rng = np.random.default_rng(2)
    noisy = rng.standard_t(3, 1_000) * 0.45
    quiet = rng.normal(0.0, 0.15, 1_000)
    quiet[0] = np.log(10)  # an extra zero
    residual = np.concatenate([noisy, quiet])
    fans = np.concatenate([np.full(1_000, 3_000), np.full(1_000, 500_000)])
    holdout = pd.DataFrame({"fans": fans, "price": 100.0 * np.exp(residual)})
    priced = pd.DataFrame(
        {"price_estimate": 100.0, "price_low": 100.0 / np.e, "price_high": 100.0 * np.e},
        index=range(2_000),
    )
    errors = steps._range_errors(holdout, priced, steps.price_now(holdout))
    kept = steps.calibrates(residual, fans)
    assert errors["typo_shaped"] == (~kept).sum() < (~steps.is_sale(residual)).sum()
    assert not kept[1_000]
    inside = np.abs(residual) <= 1.0
    assert errors["interval_coverage"] == pytest.approx(inside[kept].mean())


def test_ranges_of_a_heavy_tailed_noisy_market_hold_its_real_sales():
    """`noisy-t3` (t3 noise at 1.5x the spread, 3,000 sales): the 80% range holds ~80% of new
    real sales below 1万 fans (75.1% on this draw when the calibration left out the real sales
    past TYPO_LOG)."""
    from data.markets import BY_NAME
    from valuation.valuer import fans_band

    market = BY_NAME["noisy-t3"]
    sales = market.sales(market.rows, 1)
    encoder = steps.vocabulary(sales)
    valuer = steps.fit(sales, encoder, FIXED_TRIAL, seed=0, card={})
    learned = valuer.card.training_rows - valuer.card.screened_typos
    assert valuer.card.calibration_rows > learned  # the real tails calibrate too
    test = market.sales(20_000, 1001)
    test = test[test["fate"] != "typo"].reset_index(drop=True)
    priced = valuer.value_frame(test)
    small = fans_band(test["fans"].to_numpy()) == 0
    covered = interval_coverage(
        test["price"][small], priced["price_low"][small], priced["price_high"][small]
    )
    assert 0.78 <= covered <= 0.84


def test_ranges_of_a_t2_market_hold_its_real_sales():
    """`heavy-t2` (t2 noise, the suite's heaviest tails): ~2% of its real sales lie past the
    calibration's reach; the 80% range still holds 78-84% of new real sales (this draw, 4,000
    sales: 79.0% with every band's reach at 8 deviations, 79.6% with its heavy bands' at 12)."""
    from data.markets import BY_NAME

    market = BY_NAME["heavy-t2"]
    sales = market.sales(4_000, 1)
    valuer = steps.fit(sales, steps.vocabulary(sales), FIXED_TRIAL, seed=0, card={})
    test = market.sales(20_000, 1001)
    test = test[test["fate"] != "typo"].reset_index(drop=True)
    priced = valuer.value_frame(test)
    covered = interval_coverage(test["price"], priced["price_low"], priced["price_high"])
    assert 0.78 <= covered <= 0.84


# price_errors and interval_coverage ----------------------------------------------------------


def test_price_errors_on_a_hand_computed_example():
    errors = price_errors([100, 200], [110, 150])  # relative errors 0.10 and 0.25
    assert errors["mdape"] == pytest.approx(0.175)
    assert errors["mape"] == pytest.approx(0.175)
    assert errors["within_10pct"] == 0.5
    assert errors["within_20pct"] == 0.5
    rmsle = math.sqrt(
        ((math.log(111) - math.log(101)) ** 2 + (math.log(151) - math.log(201)) ** 2) / 2
    )
    assert errors["rmsle"] == pytest.approx(rmsle)


def test_price_errors_on_a_second_hand_computed_example():
    errors = price_errors(np.array([100.0, 100.0, 100.0]), pd.Series([100, 120, 50]))
    assert errors["mdape"] == pytest.approx(0.2)
    assert errors["mape"] == pytest.approx(0.7 / 3)
    assert errors["within_10pct"] == pytest.approx(1 / 3)
    assert errors["within_20pct"] == pytest.approx(2 / 3)


def test_perfect_estimates_have_no_error():
    errors = price_errors([50, 700, 12_000], [50, 700, 12_000])
    assert errors == {
        "mdape": 0.0,
        "mape": 0.0,
        "rmsle": 0.0,
        "within_10pct": 1.0,
        "within_20pct": 1.0,
    }


def test_interval_coverage_counts_sales_inside_their_range_bounds_included():
    assert interval_coverage([100, 200, 300], [90, 210, 300], [110, 250, 310]) == pytest.approx(
        2 / 3
    )


# baselines -----------------------------------------------------------------------------------


def test_fans_band_median_predicts_the_median_of_each_fans_decile():
    # Ten fans levels, ten sales each: every decile band holds exactly one level.
    fans = np.repeat(np.arange(1, 11) * 100, 10)
    price = np.repeat(np.arange(1, 11) * 100.0, 10) + np.tile(np.arange(10.0), 10)
    sales = pd.DataFrame({"fans": fans, "price": price})
    baseline = FansBandMedian().fit(sales)
    asked = pd.DataFrame({"fans": [100, 500, 1000, 10, 50_000]})
    # each level's prices are level + 0..9, median level + 4.5; outside the range: the end bands
    assert baseline.predict(asked).tolist() == [104.5, 504.5, 1004.5, 104.5, 1004.5]


def test_log_linear_recovers_a_noiseless_log_linear_market():
    rng = np.random.default_rng(0)
    n = 200
    sales = pd.DataFrame(
        {
            "fans": rng.integers(100, 1_000_000, n),
            "violations": rng.random(n) < 0.3,
            "live_permission": rng.random(n) < 0.4,
            "verified": rng.random(n) < 0.2,
        }
    )
    truth = (
        40
        * (1 + sales["fans"]) ** 0.7
        * np.where(sales["violations"], 0.6, 1.0)
        * np.where(sales["live_permission"], 1.25, 1.0)
        * np.where(sales["verified"], 1.18, 1.0)
    )
    sales["price"] = truth
    baseline = LogLinear().fit(sales)
    assert baseline.predict(sales) == pytest.approx(truth.to_numpy(), rel=1e-6)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_each_baseline_fits_and_predicts_positive_prices(market, name):
    held = steps.split(market, holdout_share=0.2, seed=0)
    predicted = BASELINES[name]().fit(held.train).predict(held.holdout)
    assert len(predicted) == len(held.holdout)
    assert np.isfinite(predicted).all() and (predicted > 0).all()
    # within the range of prices seen in training, give or take
    assert predicted.max() < held.train["price"].max() * 2


@pytest.mark.parametrize(("name", "penalised"), [("flag-pairs", True), ("standard", False)])
def test_search_takes_the_monotone_penalty_only_where_flags_act_together(
    name, penalised, monkeypatch
):
    """20,000 simulated sales: where live permission with verification is worth more than each
    alone (flag-pairs), the trees that split on the monotone features only below their first
    level learn it and win the comparison beyond noise; where flags act each on its own
    (standard), the default keeps its place."""
    from data.markets import BY_NAME

    penalty = next(c for c in steps.CANDIDATES if "monotone_penalty" in c)
    own = {"monotone_penalty", "learning_rate"}
    assert {k: v for k, v in penalty.items() if k not in own} == steps.CANDIDATES[0]
    monkeypatch.setattr(steps, "CANDIDATES", (steps.CANDIDATES[0], penalty))
    sales = BY_NAME[name].sales(20_000, 1).reset_index(drop=True)
    ranked = steps.search(sales, steps.vocabulary(sales), trials=2, folds=5, seed=0)
    assert ("monotone_penalty" in ranked[0].params) is penalised


@pytest.mark.parametrize(
    ("name", "rows", "seed", "chosen"),
    [("category-flags", 3000, 1, True), ("small-skew", 3000, 2, False)],
)
def test_search_takes_flags_by_category_only_where_they_differ(
    name, rows, seed, chosen, monkeypatch
):
    """category-flags (a violation x0.36 to x0.85 by category): the curve whose flags differ
    by category wins the comparison beyond noise; on small-skew, whose flags act alike in every
    category, the default keeps its place. Judged with that curve fitted in each fold without
    the fold's sales: fitted on all of them, its 42 category shares had seen the sales they were
    judged on, and it won this small-skew draw (and valued its listings 0.8 point worse)."""
    from data.markets import BY_NAME

    by_category = next(c for c in steps.CANDIDATES if c.get(steps.FLAG_CATEGORY))
    assert {k: v for k, v in by_category.items() if k != steps.FLAG_CATEGORY} == (
        steps.CANDIDATES[0]
    )
    monkeypatch.setattr(steps, "CANDIDATES", (steps.CANDIDATES[0], by_category))
    sales = BY_NAME[name].sales(rows, seed).reset_index(drop=True)
    ranked = steps.search(sales, steps.vocabulary(sales), trials=2, folds=5, seed=seed)
    assert bool(ranked[0].params.get(steps.FLAG_CATEGORY)) is chosen


def test_early_stopping_ignores_improvements_too_small_to_matter(monkeypatch):
    """20,000 simulated sales of category-slopes: trees without the price curve must build each
    category's slope in fans from steps and crawl on by millionths of the error; without a
    minimum improvement, 7 leaves ran 3,037 rounds here (five candidates ran into MAX_ROUNDS
    on the suite's draw); with it they stop where the gains stop mattering."""
    from data.markets import BY_NAME

    small_trees = next(c for c in steps.CANDIDATES if c.get("num_leaves") == 7)
    monkeypatch.setattr(steps, "CANDIDATES", (steps.CANDIDATES[0], small_trees))
    sales = BY_NAME["category-slopes"].sales(20_000, 1).reset_index(drop=True)
    ranked = steps.search(sales, steps.vocabulary(sales), trials=2, folds=5, seed=0)
    assert all(trial.rounds < steps.MAX_ROUNDS / 4 for trial in ranked)


def test_a_small_fit_runs_on_one_thread_and_a_large_one_on_every_core():
    """Below ONE_THREAD_ROWS sales a fit is on one thread (faster alone, and not slowed
    sixfold beside another training); the Dask engine's workers (no rows given) choose their own."""
    small = steps.booster_params(steps.CANDIDATES[0], 1, steps.ONE_THREAD_ROWS - 1)
    assert small["num_threads"] == 1
    assert "num_threads" not in steps.booster_params(steps.CANDIDATES[0], 1, steps.ONE_THREAD_ROWS)
    assert "num_threads" not in steps.booster_params(steps.CANDIDATES[0], 1)
