"""The training steps on a suite market's sales, in process: a quicker look than the suite's CLI.

For each market and draw: `steps.search` of the candidates and `steps.fit` of the chosen one on
the market's `rows` sales (all of them, as the served model learns; no holdout), then 20,000 new
real sales of the same market (typos are not sales) valued at once. Printed per draw and as the
mean per market: MdAPE over the true median's, the 80% range's coverage overall and in the top
fans band, its median width over the true interval's, the RMS of log estimate - log true median,
and the chosen candidate. A choice made on these figures is checked through the CLI by
`benchmarks/accuracy.py --suite` before it is quoted in the README. SIMULATED markets only.

    .venv/bin/python benchmarks/in_process.py --markets small-skew,noisy-t3 [--draws 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from data.markets import BY_NAME
from training import steps
from training.evaluation import interval_coverage, price_errors
from valuation.schema import FANS, PRICE
from valuation.valuer import fans_band

TEST_ROWS = 20_000


def one_draw(market, seed: int, trials: int) -> dict:
    started = time.perf_counter()
    sales = market.sales(market.rows, seed).drop(columns=["fate"]).reset_index(drop=True)
    encoder = steps.vocabulary(sales)
    best = steps.search(sales, encoder, trials, 5, seed)[0]
    valuer = steps.fit(sales, encoder, best, seed, {}, 5)
    test = market.sales(TEST_ROWS, seed + 1000, unseen=True, at_end=True)
    test = test[test["fate"] != "typo"].drop(columns=["fate"]).reset_index(drop=True)
    priced = valuer.value_frame(test)
    actual, truth = test[PRICE.name].to_numpy(), market.true_quantiles(test)
    estimate = priced["price_estimate"].to_numpy()
    low, high = priced["price_low"].to_numpy(), priced["price_high"].to_numpy()
    band = fans_band(test[FANS.name].to_numpy())
    top = band == band.max()
    return {
        "market": market.name,
        "seed": seed,
        "ratio": price_errors(actual, estimate)["mdape"]
        / price_errors(actual, truth[0.5])["mdape"],
        "cover": interval_coverage(actual, low, high),
        "top_cover": interval_coverage(actual[top], low[top], high[top]),
        "width": float(np.median(high - low) / np.median(truth[0.9] - truth[0.1])),
        "rms_log": float(np.sqrt(np.mean((np.log(estimate) - np.log(truth[0.5])) ** 2))),
        "chosen": best.params.get(steps.PRICE_CURVE, 0.0),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", default="small-skew,noisy-t3")
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trials", type=int, default=len(steps.CANDIDATES))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for name in args.markets.split(","):
        for seed in range(args.seed, args.seed + args.draws):
            rows.append(one_draw(BY_NAME[name], seed, args.trials))
            row = rows[-1]
            print(
                f"{name:16}{seed:4}  MdAPE/true {row['ratio']:.4f}  cover {row['cover']:.3f}"
                f"  top {row['top_cover']:.3f}  width {row['width']:.3f}"
                f"  rms_log {row['rms_log']:.4f}  curve {row['chosen']}  {row['seconds']:.0f} s",
                flush=True,
            )
    table = pd.DataFrame(rows).groupby("market", sort=False)
    print("\nmean per market (SIMULATED)")
    print(table[["ratio", "cover", "top_cover", "width", "rms_log"]].mean().round(4).to_string())


if __name__ == "__main__":
    main()
