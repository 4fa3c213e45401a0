"""The training pipeline's steps: plain functions from data to data, no MLflow and no disk."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.evaluation import BASELINES, interval_coverage, price_errors
from valuation.comparables import Comparables
from valuation.encoding import CATEGORICAL, FEATURE_NAMES, MONOTONE, Encoder
from valuation.loading import LoadedListings
from valuation.schema import CATEGORY, FANS, PRICE, SOLD_AT
from valuation.valuer import DEFAULT_LEVEL, FANS_BANDS, MIN_SCALE, Valuer, fans_band

CALIBRATION_SHARE = 0.25
MDAPE_TOLERANCE = 0.01  # a candidate may be 1% worse (relative) and still take over: noise
COVERAGE_TOLERANCE = 0.04  # the 80% range must hold 76-84% of the holdout sales
MIN_BAND_ROWS = 60  # fewer calibration sales in a band: borrow its neighbours (95% needs 39+)
OOF_FOLDS = 5
RESIDUAL_P = np.round(np.linspace(0.005, 0.995, 199), 3)
SCALE_ROUNDS = 300
# The scale model: median of |residual|, smooth in fans, robust to the odd typo.
SCALE_PARAMS = {
    "objective": "l1",
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_data_in_leaf": 100,
    "min_data_per_group": 50,
    "verbosity": -1,
    "deterministic": True,
    "force_row_wise": True,
}
MAX_ROUNDS = 3000
EARLY_STOPPING = 50

# Huber regression on log price: squared error near the fit, absolute beyond the band `alpha`, so a
# price typo (x10) or a bargain sale pulls the estimate no more than any other row beyond the band.
# (LightGBM refuses monotone constraints with the L1 and quantile objectives.)
FIXED_PARAMS = {
    "objective": "huber",
    "monotone_constraints": list(MONOTONE),
    "monotone_constraints_method": "advanced",
    "min_data_per_group": 20,
    "verbosity": -1,
    "deterministic": True,
    "force_row_wise": True,
}
SEARCH_SPACE = {
    "alpha": [0.2, 0.3, 0.5],  # the Huber band, in log price
    "num_leaves": [7, 15, 31, 63],
    "learning_rate": [0.03, 0.06, 0.1],
    "min_data_in_leaf": [10, 20, 40, 80],
    "lambda_l2": [0.0, 1.0, 5.0],
    "cat_smooth": [5.0, 10.0, 20.0],
}


class TooManyRejects(ValueError):
    pass


@dataclass
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    by: str
    """"time" (the most recent sales are held out) or "random"."""


@dataclass
class Trial:
    params: dict
    cv_l1: float
    rounds: int


def data_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate(loaded: LoadedListings, max_reject_share: float) -> pd.DataFrame:
    """The usable sales, or a refusal when too much of the export could not be read."""
    check_rejects(loaded.total, len(loaded.rejects), len(loaded.listings), max_reject_share)
    return loaded.listings


def check_rejects(total: int, rejected: int, usable: int, max_reject_share: float) -> None:
    share = rejected / total if total else 0.0
    if share > max_reject_share:
        raise TooManyRejects(
            f"{rejected} of {total} rows ({share:.1%}) could not be read, above the "
            f"{max_reject_share:.1%} allowed; see the rejects for line and reason"
        )
    if usable < 50:
        raise TooManyRejects(f"only {usable} usable sales: too few to train on")


def split(sales: pd.DataFrame, holdout_share: float, seed: int) -> Split:
    """Hold out the most recent sales when dates are known (a market drifts), else a random share."""
    n_holdout = max(1, round(len(sales) * holdout_share))
    if SOLD_AT.name in sales and sales[SOLD_AT.name].notna().mean() > 0.5:
        order = sales[SOLD_AT.name].fillna(pd.Timestamp.min).argsort(kind="stable").to_numpy()
        by = "time"
    else:
        order = np.random.default_rng(seed).permutation(len(sales))
        by = "random"
    holdout_rows = np.sort(order[-n_holdout:])
    is_holdout = np.zeros(len(sales), dtype=bool)
    is_holdout[holdout_rows] = True
    return Split(train=sales[~is_holdout], holdout=sales[is_holdout], by=by)


def _dataset(sales: pd.DataFrame, encoder: Encoder) -> lgb.Dataset:
    return lgb.Dataset(
        encoder.matrix(sales),
        label=np.log(sales[PRICE.name].to_numpy()),
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL),
        free_raw_data=False,
        # The search varies min_data_in_leaf over one Dataset: keep every bin, filter nothing.
        params={"feature_pre_filter": False},
    )


def search(
    train: pd.DataFrame,
    encoder: Encoder,
    trials: int,
    folds: int,
    seed: int,
    on_trial: Callable[[Trial], None] = lambda trial: None,
) -> list[Trial]:
    """Random search over SEARCH_SPACE, each candidate scored by k-fold CV (L1 on log price)."""
    rng = np.random.default_rng(seed)
    dataset = _dataset(train, encoder)
    seen, results = set(), []
    for _ in range(trials * 20):
        if len(results) == trials:
            break
        params = {key: values[rng.integers(len(values))] for key, values in SEARCH_SPACE.items()}
        key = tuple(params.values())
        if key in seen:
            continue
        seen.add(key)
        history = lgb.cv(
            {**FIXED_PARAMS, **params, "seed": seed, "metric": "l1"},
            dataset,
            num_boost_round=MAX_ROUNDS,
            nfold=folds,
            stratified=False,
            seed=seed,
            callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
        )
        scores = history["valid l1-mean"]
        trial = Trial(params=params, cv_l1=float(min(scores)), rounds=int(np.argmin(scores)) + 1)
        on_trial(trial)
        results.append(trial)
    return sorted(results, key=lambda trial: trial.cv_l1)


def fit(train: pd.DataFrame, encoder: Encoder, best: Trial, seed: int, card: dict) -> Valuer:
    """The point model, the scale model and the conformal residual distribution.

    1. point: the monotone Huber model on log price, fitted on all training sales (it is served);
    2. out-of-fold residuals r = log price - estimate, each from a model that did not see the sale;
    3. scale: a model of |r| (median regression) on three quarters of the sales: how far off an
       estimate typically is for such a listing (wide for small accounts, narrow for large ones);
    4. calibration: on the last quarter, z = r / scale; the empirical quantiles of z, with the
       finite-sample correction of split conformal prediction, are stored with the model.
    Ranges at any level and appraisal percentiles are all read off that one distribution.
    """
    params = {**FIXED_PARAMS, **best.params, "seed": seed}
    point = lgb.train(params, _dataset(train, encoder), num_boost_round=best.rounds)
    log_price = np.log(train[PRICE.name].to_numpy())
    residual = log_price - _out_of_fold(train, encoder, params, best.rounds, seed)
    return with_distribution(point, train, residual, encoder, best, seed, card)


def with_distribution(
    point: lgb.Booster,
    sales: pd.DataFrame,
    residual: np.ndarray,
    encoder: Encoder,
    best: Trial,
    seed: int,
    card: dict,
) -> Valuer:
    """Steps 3 and 4 of `fit`: the scale model and the calibrated residual quantiles, from sales
    and their out-of-sample residuals (log price minus an estimate that did not see the sale)."""
    matrix = encoder.matrix(sales)
    is_calibration = np.random.default_rng(seed).random(len(sales)) < CALIBRATION_SHARE
    scale_data = lgb.Dataset(
        matrix[~is_calibration],
        label=np.abs(residual[~is_calibration]),
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL),
    )
    scale = lgb.train({**SCALE_PARAMS, "seed": seed}, scale_data, num_boost_round=SCALE_ROUNDS)
    z = residual[is_calibration] / np.maximum(scale.predict(matrix[is_calibration]), MIN_SCALE)
    bands = fans_band(sales[FANS.name].to_numpy()[is_calibration])
    card = {
        **card,
        "residual_p": RESIDUAL_P.tolist(),
        "residual_z_by_band": [
            conformal_quantiles(z[_band_rows(bands, band)], RESIDUAL_P).tolist()
            for band in range(len(FANS_BANDS) + 1)
        ],
        "calibration_rows": int(is_calibration.sum()),
        "params": {**best.params, "rounds": best.rounds},
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "training_rows": card.get("training_rows", len(sales)),
    }
    return Valuer({"point": point, "scale": scale}, encoder, card, Comparables.from_sales(sales))


def _band_rows(bands: np.ndarray, band: int) -> np.ndarray:
    """The calibration rows of a band, widened to the nearest bands while it has too few."""
    low = high = band
    while (chosen := (bands >= low) & (bands <= high)).sum() < MIN_BAND_ROWS:
        if low == 0 and high == len(FANS_BANDS):
            break
        low, high = max(low - 1, 0), min(high + 1, len(FANS_BANDS))
    return chosen


def _out_of_fold(train, encoder, params, rounds, seed) -> np.ndarray:
    """Each sale's log estimate from a model fitted on the other folds."""
    estimate = np.empty(len(train))
    folds = np.random.default_rng(seed + 1).integers(0, OOF_FOLDS, len(train))
    for fold in range(OOF_FOLDS):
        held = folds == fold
        model = lgb.train(params, _dataset(train[~held], encoder), num_boost_round=rounds)
        estimate[held] = model.predict(encoder.matrix(train[held]))
    return estimate


def conformal_quantiles(scores: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Order statistics of `scores` that bound each probability conservatively outwards: for
    p > 0.5 the ceil((n+1)p)-th smallest, for p < 0.5 the floor((n+1)p)-th (split conformal)."""
    ordered = np.sort(scores)
    n = len(ordered)
    exact = np.round((n + 1) * probabilities, 9)  # 100 * 0.29 is 28.999...: a whole rank is 29
    upper = np.ceil(exact).astype(int)
    lower = np.floor(exact).astype(int)
    rank = np.where(probabilities > 0.5, upper, lower)
    quantiles = ordered[np.clip(rank, 1, n) - 1]
    return np.maximum.accumulate(quantiles)  # ties and clipping never let the grid decrease


@dataclass
class Evaluation:
    metrics: dict[str, dict[str, float]]
    """Errors on the holdout of "model" and of each baseline."""
    predictions: pd.DataFrame
    """Per holdout sale: the features, `price`, the model's estimate and range, each baseline."""


def evaluate(valuer: Valuer, split: Split) -> Evaluation:
    """Holdout errors of the model and of both baselines fitted on the same training sales."""
    holdout = split.holdout
    actual = holdout[PRICE.name].to_numpy()
    predictions = holdout[[*FEATURE_NAMES, PRICE.name]].join(
        valuer.value_frame(holdout, DEFAULT_LEVEL)
    )
    metrics = {"model": price_errors(actual, predictions["price_estimate"])}
    metrics["model"]["interval_coverage"] = interval_coverage(
        actual, predictions["price_low"], predictions["price_high"]
    )
    for name, baseline in BASELINES.items():
        predictions[name] = baseline().fit(split.train).predict(holdout)
        metrics[name] = price_errors(actual, predictions[name])
    return Evaluation(metrics=metrics, predictions=predictions.reset_index(drop=True))


@dataclass
class Decision:
    promote: bool
    reasons: list[str]
    candidate: dict[str, float]
    champion: dict[str, float] | None
    """The current champion's errors on the candidate's holdout; None when there is none."""


def decide(candidate: dict[str, float], champion: dict[str, float] | None) -> Decision:
    """Does the candidate earn `champion`? Its MdAPE may be at most MDAPE_TOLERANCE (relative)
    worse than the champion's on the same holdout, and its range must hold DEFAULT_LEVEL of the
    holdout sales within COVERAGE_TOLERANCE."""
    reasons, promote = [], True
    coverage = candidate["interval_coverage"]
    if abs(coverage - DEFAULT_LEVEL) > COVERAGE_TOLERANCE + 1e-9:  # 0.76 is within, exactly
        promote = False
        reasons.append(
            f"its {DEFAULT_LEVEL:.0%} range held {coverage:.1%} of holdout sales, outside "
            f"{DEFAULT_LEVEL - COVERAGE_TOLERANCE:.0%}-{DEFAULT_LEVEL + COVERAGE_TOLERANCE:.0%}"
        )
    else:
        reasons.append(f"its {DEFAULT_LEVEL:.0%} range held {coverage:.1%} of holdout sales")
    if champion is None:
        reasons.append("there is no champion yet")
    elif candidate["mdape"] > champion["mdape"] * (1 + MDAPE_TOLERANCE):
        promote = False
        reasons.append(
            f"MdAPE {candidate['mdape']:.2%} is worse than the champion's {champion['mdape']:.2%} "
            f"on the same holdout by more than {MDAPE_TOLERANCE:.0%}"
        )
    else:
        reasons.append(
            f"MdAPE {candidate['mdape']:.2%} against the champion's {champion['mdape']:.2%} "
            "on the same holdout"
        )
    return Decision(promote, reasons, candidate, champion)


def champion_errors(champion: Valuer, split: Split) -> dict[str, float]:
    """The serving champion's errors on the candidate's holdout: the same sales for both."""
    actual = split.holdout[PRICE.name].to_numpy()
    priced = champion.value_frame(split.holdout, DEFAULT_LEVEL)
    errors = price_errors(actual, priced["price_estimate"])
    errors["interval_coverage"] = interval_coverage(
        actual, priced["price_low"], priced["price_high"]
    )
    return errors


def vocabulary(train: pd.DataFrame) -> Encoder:
    return Encoder.fit(train[CATEGORY.name])
