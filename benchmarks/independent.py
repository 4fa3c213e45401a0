"""The eleven markets of `data/independent.py`, built apart from the suite's generator, trained
and priced as a user does it: report only, no default is chosen on them.

Each market at each of its sizes (20,000 and 3,000 sales): its export through `valuation train
--data` in a fresh project folder, then 20,000 new listings at the market date through
`valuation batch`, both as processes; the same figures as the suite's (benchmarks/suite.py), on
SIMULATED sales.

    .venv/bin/python benchmarks/independent.py [--markets floor,rounded] [--sizes 3000] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from suite import figures, judge, line, print_header, train_and_price

from data.independent import BY_NAME, MARKETS

TEST_ROWS = 20_000


def run(market, rows: int, seed: int, home: Path) -> dict:
    data = home / f"{market.name}.csv"
    market.export(rows, seed).to_csv(data, index=False)
    listings, fans, sold, truth = market.new_listings(TEST_ROWS, seed + 1000)
    env = {**os.environ, "VALUATION_HOME": str(home), "VALUATION_SEED": str(seed)}
    env.pop("MLFLOW_TRACKING_URI", None)
    priced, timed = train_and_price(market.name, data, listings, home, env)
    return {
        "market": market.name,
        "purpose": "report",
        "rows": rows,
        **figures(sold, priced, truth, fans),
        **timed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", help="a comma-separated subset")
    parser.add_argument("--sizes", help="comma-separated export sizes (default: each market's)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    markets = [BY_NAME[name] for name in args.markets.split(",")] if args.markets else MARKETS
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else None
    print_header("data/independent.py")
    rows = []
    for market in markets:
        for size in sizes or market.rows:
            with tempfile.TemporaryDirectory() as home:
                rows.append(run(market, size, args.seed, Path(home)))
            print(line(rows[-1]), flush=True)
            if rows[-1]["warning"]:
                print(f"  {rows[-1]['warning']}", flush=True)
    judge(rows)


if __name__ == "__main__":
    main()
