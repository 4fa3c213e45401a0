"""The object that turns a listing into a valuation, and the model bundle it is stored as.

A bundle is data, not code: LightGBM's own text models (the point estimate and the two range
bounds, all on log price) plus `bundle.json` with the feature order, the category vocabulary, the
range level and what is known of the training run. Loading it executes nothing.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from valuation.encoding import FEATURE_NAMES, MONOTONE, Encoder
from valuation.listing import Listing
from valuation.schema import CURRENCY
from valuation.scoring import RowScorer

BUNDLE_FORMAT = 1
BOOSTERS = ("point", "low", "high")


@dataclass(frozen=True)
class Valuation:
    price_estimate: float
    price_low: float
    price_high: float
    interval: float
    """The share of sales the range [price_low, price_high] is meant to hold."""
    known_category: bool
    model_version: str | None = None
    currency: str = CURRENCY

    @property
    def notes(self) -> list[str]:
        if self.known_category:
            return []
        return ["category unknown to the model: valued as an average category"]


class Valuer:
    def __init__(self, boosters: dict[str, lgb.Booster], encoder: Encoder, card: dict):
        self.boosters = boosters
        self.encoder = encoder
        self.card = card
        """What is known of the model: interval, metrics, data, versions (bundle.json)."""
        self.version: str | None = card.get("model_version")
        self._row = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float64)
        self._row_lock = threading.Lock()
        self._scorers = [RowScorer(boosters[name], self._row) for name in BOOSTERS]

    @property
    def interval(self) -> float:
        return float(self.card["interval"])

    @property
    def range_margin(self) -> float:
        """Conformal widening of both range bounds, in log price, fitted on calibration sales."""
        return float(self.card.get("range_margin", 0.0))

    def value(self, listing: Listing) -> Valuation:
        """One listing, straight into the model's input row: no pandas on this path."""
        with self._row_lock:
            self.encoder.fill(self._row, listing)
            point, low, high = (score() for score in self._scorers)
        estimate, low, high = self._prices(point, low, high)
        return Valuation(
            price_estimate=float(estimate),
            price_low=float(low),
            price_high=float(high),
            interval=self.interval,
            known_category=self.encoder.knows(listing.category),
            model_version=self.version,
        )

    def value_matrix(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Estimate, low and high in whole CNY; low <= estimate <= high always holds."""
        return self._prices(*(self.boosters[name].predict(matrix) for name in BOOSTERS))

    def _prices(self, point, low, high):
        """Log-price predictions -> whole CNY, the conformal margin applied, the range around the
        estimate. Scalars (the quote path) or arrays (batches) alike."""
        margin = self.range_margin
        low, high = np.minimum(low - margin, point), np.maximum(high + margin, point)
        return np.round(np.exp(point)), np.floor(np.exp(low)), np.ceil(np.exp(high))

    def value_frame(self, listings: pd.DataFrame) -> pd.DataFrame:
        """Listings with canonical, typed columns -> price_estimate, price_low, price_high."""
        estimate, low, high = self.value_matrix(self.encoder.matrix(listings))
        return pd.DataFrame(
            {"price_estimate": estimate, "price_low": low, "price_high": high},
            index=listings.index,
        )

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, booster in self.boosters.items():
            booster.save_model(directory / f"{name}.txt")
        card = {
            **self.card,
            "format": BUNDLE_FORMAT,
            "features": list(FEATURE_NAMES),
            "monotone": list(MONOTONE),
            "categories": list(self.encoder.categories),
            "lightgbm": lgb.__version__,
        }
        (directory / "bundle.json").write_text(json.dumps(card, ensure_ascii=False, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Valuer:
        directory = Path(directory)
        card = json.loads((directory / "bundle.json").read_text())
        if card.get("format") != BUNDLE_FORMAT or card.get("features") != list(FEATURE_NAMES):
            raise ValueError(
                f"{directory}: bundle format {card.get('format')} with features "
                f"{card.get('features')} does not match this code ({list(FEATURE_NAMES)})"
            )
        boosters = {
            name: lgb.Booster(model_file=str(directory / f"{name}.txt")) for name in BOOSTERS
        }
        return cls(boosters, Encoder(tuple(card["categories"])), card)
