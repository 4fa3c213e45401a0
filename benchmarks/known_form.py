"""How far the pipeline is from a model that knows the simulator's own price formula.

For each draw of a suite market without dates, a bend at the top, category slopes or flag growth
(`standard`, `small-skew`, `bimodal-typos`, `noisy-t3`), the simulator's formula (log(base +
scale * (fans / 1万) ** exponent) + the flags' log effects, live permission's growing with fans
as the simulator draws it, + each category's log premium) is fitted to the sales by robust least
squares (soft L1, then again without the sales more than TYPO_LOG away), shifted to the median
residual, and judged like the suite: MdAPE over the true median's on 20,000 new real sales.
Beside it, the served valuer of the training steps (default candidate, in process). No real
market follows a formula anyone knows: the gap is what a flexible model pays for not knowing
it, on SIMULATED data only.

    .venv/bin/python benchmarks/known_form.py [--market small-skew] [--draws 8]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from data.markets import BY_NAME
from training import steps
from training.evaluation import price_errors
from valuation.schema import CATEGORY, FANS, LIVE_PERMISSION, PRICE, VERIFIED, VIOLATIONS
from valuation.valuer import DEFAULT_LEVEL

TEST_ROWS = 20_000


def known_form(params: np.ndarray, sales: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The simulator's formula for log price, with free parameters."""
    log_base, log_scale, exponent, violation, live_0, live_1, verified = params[:7]
    premium = np.append(0.0, params[7:])
    fans = sales[FANS.name].to_numpy(dtype=float)
    log_price = np.log(np.exp(log_base) + np.exp(log_scale) * (fans / 1e4) ** exponent)
    live = np.log1p(np.clip(live_0 + live_1 * np.log10(np.maximum(fans, 1.0) / 1e4), 0.02, 0.45))
    log_price = (
        log_price
        + np.where(sales[VIOLATIONS.name], violation, 0.0)
        + np.where(sales[LIVE_PERMISSION.name], live, 0.0)
        + np.where(sales[VERIFIED.name], verified, 0.0)
    )
    codes = pd.Series(sales[CATEGORY.name].to_numpy()).map({n: i for i, n in enumerate(names)})
    return log_price + premium[codes.fillna(0).astype(int).to_numpy()]


def mdape_ratio(estimate: np.ndarray, test: pd.DataFrame, truth: np.ndarray) -> float:
    actual = test[PRICE.name].to_numpy()
    return price_errors(actual, estimate)["mdape"] / price_errors(actual, truth)["mdape"]


def draw(market, seed: int) -> tuple[float, float]:
    names = list(market.categories()[0])
    sales = market.sales(market.rows, seed).drop(columns=["sold_at"], errors="ignore")
    sales = sales.reset_index(drop=True)
    log_price = np.log(sales[PRICE.name].to_numpy())
    start = np.r_[np.log(30.0), np.log(500.0), 0.7, -0.5, 0.12, 0.1, 0.15, np.zeros(len(names) - 1)]

    def residual(params, rows):
        return (known_form(params, sales, names) - log_price)[rows]

    every = np.ones(len(sales), dtype=bool)
    fitted = least_squares(residual, start, args=(every,), loss="soft_l1", f_scale=0.3).x
    sale = steps.is_sale(log_price - known_form(fitted, sales, names))
    fitted = least_squares(residual, fitted, args=(sale,), loss="soft_l1", f_scale=0.3).x
    shift = np.median((log_price - known_form(fitted, sales, names))[sale])

    encoder = steps.vocabulary(sales)
    best = steps.search(sales, encoder, trials=1, folds=5, seed=0)[0]
    valuer = steps.fit(sales, encoder, best, seed=0, card={}, folds=5)

    test = market.sales(TEST_ROWS, seed + 1000)
    test = test[test["fate"] != "typo"].reset_index(drop=True)
    truth = market.true_quantiles(test)[0.5]
    known = np.exp(known_form(fitted, test, names) + shift)
    ours = valuer.value_frame(test, DEFAULT_LEVEL)["price_estimate"].to_numpy()
    return mdape_ratio(known, test, truth), mdape_ratio(ours, test, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--market", default="small-skew")
    parser.add_argument("--draws", type=int, default=8)
    args = parser.parse_args()
    market = BY_NAME[args.market]
    if market.dated or market.top_exponent or market.category_slopes or market.flag_growth:
        raise SystemExit(f"{args.market}: the known form here has no dates, bend, slopes or growth")
    warnings.filterwarnings("ignore", category=UserWarning)
    print(f"{args.market}, SIMULATED: MdAPE over the true median's on {TEST_ROWS:,} new sales")
    print(f"{'seed':>4}{'known form':>12}{'pipeline':>10}")
    rows = []
    for seed in range(1, args.draws + 1):
        rows.append(draw(market, seed))
        print(f"{seed:4d}{rows[-1][0]:12.3f}{rows[-1][1]:10.3f}", flush=True)
    known, ours = np.mean(rows, axis=0)
    print(f"mean{known:12.3f}{ours:10.3f}")


if __name__ == "__main__":
    main()
