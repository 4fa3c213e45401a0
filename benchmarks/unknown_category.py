"""What the unknown code buys: a category outside the vocabulary, valued with and without it.

On the suite's `category-slopes` market (3% of the listings to value come from a category no sale
had), the training steps are fitted with UNKNOWN_CATEGORY_SHARE at 0 (the unknown code never seen
in training: LightGBM's branch for unseen values), 5% (the default) and 10%, and the MdAPE of the
unseen, the known and all listings is printed as a ratio to the simulator's true median's. In
process (the steps alone, no MLflow); SIMULATED data.

    .venv/bin/python benchmarks/unknown_category.py [--rows 20000] [--seed 1]
"""

from __future__ import annotations

import argparse

from data.markets import BY_NAME
from training import steps
from training.evaluation import price_errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    market = BY_NAME["category-slopes"]
    sales = market.sales(args.rows, args.seed).reset_index(drop=True)
    encoder = steps.vocabulary(sales)
    best = steps.search(sales, encoder, trials=1, folds=5, seed=0)[0]
    test = market.sales(20_000, args.seed + 1000, unseen=True, at_end=True)
    test = test[test["fate"] != "typo"]
    truth = market.true_quantiles(test)[0.5]
    actual = test["price"].to_numpy()
    unseen = (test["category"] == "新类目").to_numpy()

    def ratio(estimate, rows):
        return (
            price_errors(actual[rows], estimate[rows])["mdape"]
            / price_errors(actual[rows], truth[rows])["mdape"]
        )

    print(f"MdAPE / true median's, {unseen.sum()} unseen of {len(test)} listings (SIMULATED)")
    print(f"{'unknown share':>14}{'unseen':>9}{'known':>9}{'all':>9}")
    default = steps.UNKNOWN_CATEGORY_SHARE
    try:
        for share in (0.0, 0.05, 0.10):
            steps.UNKNOWN_CATEGORY_SHARE = share
            valuer = steps.fit(sales, encoder, best, seed=0, card={}, folds=5)
            estimate = valuer.value_frame(test)["price_estimate"].to_numpy()
            print(
                f"{share:>14.0%}{ratio(estimate, unseen):9.3f}{ratio(estimate, ~unseen):9.3f}"
                f"{ratio(estimate, unseen | ~unseen):9.3f}"
            )
    finally:
        steps.UNKNOWN_CATEGORY_SHARE = default


if __name__ == "__main__":
    main()
