"""Accuracy measures and the two baselines every model is compared with on the same holdout."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from valuation.schema import FANS, FLAGS, PRICE


def price_errors(actual, predicted) -> dict[str, float]:
    """MdAPE, MAPE, RMSLE and the share of estimates within 10% and 20% of the real price."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    relative = np.abs(predicted - actual) / actual
    return {
        "mdape": float(np.median(relative)),
        "mape": float(np.mean(relative)),
        "rmsle": float(np.sqrt(np.mean((np.log1p(predicted) - np.log1p(actual)) ** 2))),
        "within_10pct": float(np.mean(relative <= 0.10)),
        "within_20pct": float(np.mean(relative <= 0.20)),
    }


def interval_coverage(actual, low, high) -> float:
    actual = np.asarray(actual, dtype=float)
    return float(np.mean((actual >= np.asarray(low)) & (actual <= np.asarray(high))))


class FansBandMedian:
    """Baseline 1: the median price of past sales in the same fans band (deciles of fans)."""

    def fit(self, sales: pd.DataFrame) -> FansBandMedian:
        fans = sales[FANS.name].to_numpy(dtype=float)
        self.edges = np.unique(np.quantile(fans, np.linspace(0, 1, 11)[1:-1]))
        bands = np.searchsorted(self.edges, fans, side="right")
        self.medians = pd.Series(sales[PRICE.name].to_numpy()).groupby(bands).median()
        self.overall = float(sales[PRICE.name].median())
        return self

    def predict(self, listings: pd.DataFrame) -> np.ndarray:
        bands = np.searchsorted(self.edges, listings[FANS.name].to_numpy(dtype=float), side="right")
        return pd.Series(bands).map(self.medians).fillna(self.overall).to_numpy()


class LogLinear:
    """Baseline 2: least squares of log price on log fans and the flags."""

    @staticmethod
    def _design(listings: pd.DataFrame) -> np.ndarray:
        columns = [np.log1p(listings[FANS.name].to_numpy(dtype=float))]
        columns += [listings[flag.name].to_numpy(dtype=float) for flag in FLAGS]
        return np.column_stack(columns)

    def fit(self, sales: pd.DataFrame) -> LogLinear:
        self.model = LinearRegression().fit(self._design(sales), np.log(sales[PRICE.name]))
        return self

    def predict(self, listings: pd.DataFrame) -> np.ndarray:
        return np.exp(self.model.predict(self._design(listings)))


BASELINES = {"baseline_fans_band": FansBandMedian, "baseline_linear": LogLinear}


MIN_GROUP_SALES = 30
"""A category with fewer holdout sales is reported with the others, under OTHER_CATEGORIES."""
OTHER_CATEGORIES = "(other categories)"


def accuracy_by(predictions: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """The model's MdAPE on the holdout by fans band and by category (those with at least
    MIN_GROUP_SALES sales; the rest pooled), with each group's count of sales: where the model is
    less sure."""
    from valuation.valuer import BAND_NAMES, fans_band

    actual = predictions["price"].to_numpy(dtype=float)
    relative = np.abs(predictions["price_estimate"].to_numpy(dtype=float) - actual) / actual

    def groups(keys) -> dict[str, dict[str, float]]:
        frame = pd.DataFrame({"key": keys, "relative": relative})
        summary = frame.groupby("key", sort=False)["relative"].agg(["median", "size"])
        ordered = summary.sort_values("size", ascending=False)
        return {
            str(k): {"mdape": float(row["median"]), "sales": int(row["size"])}
            for k, row in ordered.iterrows()
        }

    bands = fans_band(predictions["fans"].to_numpy())
    by_band = groups(np.asarray(BAND_NAMES, dtype=object)[bands])
    counts = predictions["category"].value_counts()
    kept = set(counts[counts >= MIN_GROUP_SALES].index)
    categories = predictions["category"].where(predictions["category"].isin(kept), OTHER_CATEGORIES)
    return {"fans_band": by_band, "category": groups(categories.to_numpy())}
