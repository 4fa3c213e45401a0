"""The object that turns a listing into a valuation, and the model bundle it is stored as.

A valuation is a price distribution, not just a number: log price = center + scale * z, where
`center` is the point model's estimate (a monotone median), `scale` the scale model's typical
error for this listing (wide for small accounts, narrow for established ones), and z follows the
residual distribution measured out of sample at training time (a split-conformal predictive
distribution). Every range level and every appraisal percentile is read off that one distribution,
so they agree with each other and hold their promise out of sample.

A bundle is data, not code: LightGBM's own text models plus `bundle.json` (feature order, category
vocabulary, residual quantiles, metrics, versions) and, when kept, the comparable sales as Parquet.
Loading it executes nothing. The same trees compiled to machine code (valuation/compiled.py) price
exactly as LightGBM does, faster; where they are attached, LightGBM is not even imported until an
explanation needs it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from valuation.card import BUNDLE_FORMAT, READS_FORMATS, ModelCard
from valuation.comparables import Comparables
from valuation.curve import PART_COLUMNS
from valuation.encoding import FANS_COLUMN, FEATURE_NAMES, MONOTONE, Encoder
from valuation.listing import Listing
from valuation.market import DateOutsideMarket
from valuation.schema import CATEGORY, CURRENCY

if TYPE_CHECKING:
    import lightgbm as lgb

    from valuation.compiled import CompiledTrees

BOOSTERS = ("point", "scale")
DEFAULT_LEVEL = 0.80
MIN_LEVEL, MAX_LEVEL = 0.50, 0.95
MIN_SCALE = 0.01  # log price: a listing is never valued as certain to the yuan
FANS_BANDS = (10_000, 100_000, 1_000_000)
"""Band edges (1万, 10万, 100万): the residual distribution is calibrated in each band on its own
(Mondrian conformal), so a range keeps its promise for small and large accounts alike."""
BAND_NAMES = ("under 1万", "1-10万", "10-100万", "100万 and over")


def fans_band(fans):
    """0 to 3: the band of each fans count (scalar or array)."""
    return np.searchsorted(FANS_BANDS, fans, side="right")


@dataclass(frozen=True)
class ResidualGrid:
    """Quantiles of the standardized residual z at probabilities `p` (increasing, both)."""

    p: np.ndarray
    z: np.ndarray

    def quantile(self, probability):
        return np.interp(probability, self.p, self.z)

    def cdf(self, z):
        return np.interp(z, self.z, self.p)


@dataclass(frozen=True)
class PriceDistribution:
    center: float
    """Log of the point estimate."""
    scale: float
    grid: ResidualGrid

    def price_at(self, probability: float) -> float:
        """The price below which that share of comparable sales is expected."""
        return float(np.exp(self.center + self.scale * self.grid.quantile(probability)))

    def percentile(self, price: float) -> float:
        """The share of comparable sales expected below `price`."""
        return float(self.grid.cdf((np.log(price) - self.center) / self.scale))


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
    distribution: PriceDistribution | None = field(default=None, repr=False, compare=False)
    beyond_fans: int | None = None
    """The most fans of any sale the model learned from, when the listing has more (else None):
    past it only the price curve rises (for a decade at most, at the slope of its top); the
    trees price such a listing as that account."""

    @property
    def notes(self) -> list[str]:
        notes = []
        if not self.known_category:
            notes.append("category unknown to the model: valued as an average category")
        if self.beyond_fans is not None:
            notes.append(
                f"more fans than any sale the model learned from (at most {self.beyond_fans:,}): "
                "the estimate extends the largest accounts' prices and is less sure"
            )
        return notes


def check_level(level: float) -> float:
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"range level must be between {MIN_LEVEL} and {MAX_LEVEL}, not {level}")
    return level


def columns_of(listings: list[Listing]) -> dict[str, list]:
    """Listings as columns, one list per feature (what `level_as_of` reads a shape from)."""
    return {name: [getattr(listing, name) for listing in listings] for name in FEATURE_NAMES}


class Valuer:
    def __init__(
        self,
        boosters: Mapping[str, lgb.Booster | str],
        encoder: Encoder,
        card: ModelCard,
        comparables: Comparables | None = None,
        name: str | None = None,
        version: str | None = None,
    ):
        self._models = dict(boosters)
        """Each model as a LightGBM booster, or as its text until a booster is needed."""
        self._models_lock = threading.Lock()
        self.compiled: dict[str, CompiledTrees] | None = None
        """The same trees compiled (`use_compiled`): they price when present."""
        self.encoder = encoder
        self.card = card
        """What is known of the model: residual quantiles, metrics, data (valuation/card.py)."""
        self.comparables = comparables
        self.name = name
        self.version = version
        """The registry's name and version of the model (None: not loaded from a registry)."""
        self.promotion: dict[str, str] | None = None
        """The promotion gate's record on that version in the registry: `decision` (promoted,
        promoted_with_warning, promoted_by_hand, ...) and `reasons`; None when there is none."""
        self.market = card.market
        """Prices over time, when the model was trained on dated sales (else None)."""
        self.curve = card.price_curve
        """The smooth start of the point model: a curve in fans, each category's offset (None:
        the booster alone, as in bundles of format 2)."""
        self.top_fans = None if self.curve is None else round(10 ** self.curve.log10_fans[-1])
        """The most fans of the sales the curve was drawn on (its grid's end), if known."""
        p = np.asarray(card.residual_p)
        self.grids = [ResidualGrid(p, np.asarray(z)) for z in card.residual_z_by_band]
        self._row = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float64)
        self._row_lock = threading.Lock()
        self._scorers = None  # scoring `_row`: made on the first quote, by whatever prices
        self._contributions = None
        # A range level's tails per band, read off the grids once per level: levels come from
        # requests (any float in range), so only the most recent few are kept.
        self._tails = lru_cache(maxsize=64)(self._band_tails)

    @property
    def boosters(self) -> dict[str, lgb.Booster]:
        """LightGBM's boosters, parsed from their text on first use."""
        if any(isinstance(model, str) for model in self._models.values()):
            import lightgbm as lgb

            with self._models_lock:
                self._models = {
                    name: lgb.Booster(model_str=model) if isinstance(model, str) else model
                    for name, model in self._models.items()
                }
        return self._models

    def model_text(self, name: str) -> str:
        """LightGBM's text of the model `name` (what a bundle stores, and what is compiled)."""
        model = self._models[name]
        return model if isinstance(model, str) else model.model_to_string()

    def use_compiled(self, trees: dict[str, CompiledTrees] | None) -> None:
        """Prices with these compiled trees from now on (None: with LightGBM)."""
        with self._row_lock:
            self.compiled = trees
            self._scorers = None

    def _row_scorers(self):
        """Called under `_row_lock`."""
        if self._scorers is None:
            if self.compiled is not None:
                self._scorers = [self.compiled[name].row_scorer(self._row) for name in BOOSTERS]
            else:
                from valuation.scoring import RowScorer

                self._scorers = [RowScorer(self.boosters[name], self._row) for name in BOOSTERS]
        return self._scorers

    def predict(self, name: str, matrix: np.ndarray) -> np.ndarray:
        """The raw score of model `name` for each row: compiled trees where attached (the same
        numbers), else LightGBM."""
        if self.compiled is not None:
            return self.compiled[name].predict(matrix)
        return self.boosters[name].predict(matrix)

    @property
    def market_date(self) -> dt.date | None:
        """The date every quote values a listing at, unless `as_of` names an earlier one: the
        latest sale the model learned from (None for a model trained without dates)."""
        return self.market.market_date if self.market else None

    def level_as_of(self, categories, as_of: dt.date | None, listings=None) -> np.ndarray | float:
        """Each listing's log price level at `as_of` relative to the market date: its category's
        and, where the market's shape moved, the listing's own part of that (`listings`: a frame
        or a mapping of columns holding fans and the flags, in the categories' order). 0 without
        `as_of`; DateOutsideMarket for a date after the market date, before the first sale, or
        for a model that knows no dates."""
        if as_of is None:
            return 0.0
        if self.market is None:
            raise DateOutsideMarket(
                "this model was trained on sales without dates: it values listings at no "
                "particular date, so as_of cannot be used"
            )
        return self.market.level(categories, as_of, listings)

    def value(
        self, listing: Listing, level: float = DEFAULT_LEVEL, as_of: dt.date | None = None
    ) -> Valuation:
        """One listing, straight into the model's input row: no pandas on this path."""
        moved = 0.0
        if as_of is not None:
            moved = float(self.level_as_of([listing.category], as_of, columns_of([listing]))[0])
        with self._row_lock:
            self.encoder.fill(self._row, listing)
            center, scale = (score() for score in self._row_scorers())
            if self.curve is not None:
                center += self.curve.one(self._row[0])
        center += moved
        band = bisect_right(FANS_BANDS, listing.fans)  # `fans_band` of one count
        distribution = PriceDistribution(center, max(scale, MIN_SCALE), self.grids[band])
        prices = self._prices_one(center, distribution.scale, level, band)
        return self._valuation(listing, *prices, level, distribution)

    def value_many(
        self, listings: list[Listing], level: float = DEFAULT_LEVEL, as_of: dt.date | None = None
    ) -> list[Valuation]:
        """Many listings at once, one predict call per model and no pandas (batch quotes)."""
        moved = 0.0
        if as_of is not None:
            categories = [listing.category for listing in listings]
            moved = self.level_as_of(categories, as_of, columns_of(listings))
        estimates, lows, highs = self.value_matrix(self.encoder.rows(listings), level, moved)
        return [
            self._valuation(listing, estimate, low, high, level)
            for listing, estimate, low, high in zip(listings, estimates, lows, highs, strict=True)
        ]

    def _valuation(self, listing, estimate, low, high, level, distribution=None) -> Valuation:
        return Valuation(
            price_estimate=float(estimate),
            price_low=float(low),
            price_high=float(high),
            interval=level,
            known_category=self.encoder.knows(listing.category),
            model_version=self.version,
            distribution=distribution,
            beyond_fans=self._beyond(listing.fans),
        )

    def _beyond(self, fans: float) -> int | None:
        """`top_fans` when `fans` is past it (the grid is rounded to 6 decimals of log10: 1e-5)."""
        top = self.top_fans
        return top if top is not None and fans > top * (1 + 1e-5) else None

    def value_matrix(self, matrix: np.ndarray, level: float = DEFAULT_LEVEL, moved=0.0):
        """Estimate, low and high in whole CNY for many rows; low <= estimate <= high. `moved`:
        each row's log level at its date relative to the market date (`level_as_of`)."""
        center, scale = self._center_scale(matrix, moved)
        return self._prices(center, scale, level, fans_band(matrix[:, FANS_COLUMN]))

    def _center_scale(self, matrix: np.ndarray, moved) -> tuple[np.ndarray, np.ndarray]:
        """Each row's log estimate (curve and shift included) and scale."""
        center = self.predict("point", matrix) + moved
        if self.curve is not None:
            center += self.curve(matrix)
        return center, np.maximum(self.predict("scale", matrix), MIN_SCALE)

    def percentile_matrix(self, matrix: np.ndarray, prices: np.ndarray, moved=0.0) -> np.ndarray:
        """Each price's percentile in its row's calibrated distribution (as
        `PriceDistribution.percentile` for one listing), for many rows at once."""
        center, scale = self._center_scale(matrix, moved)
        z = (np.log(prices) - center) / scale
        bands = fans_band(matrix[:, FANS_COLUMN])
        out = np.empty(len(z))
        for band, grid in enumerate(self.grids):
            rows = bands == band
            out[rows] = grid.cdf(z[rows])
        return out

    def _band_tails(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """The standardized residuals below and above which each band's tails lie at `level`."""
        tail = (1 - check_level(level)) / 2
        below = np.array([grid.quantile(tail) for grid in self.grids])
        above = np.array([grid.quantile(1 - tail) for grid in self.grids])
        return below, above

    def _prices_one(self, center: float, scale: float, level: float, band: int):
        """`_prices` of one listing in plain Python floats, the same numbers bit for bit (IEEE
        arithmetic, min and max, floor, ceil and round half to even are exact either way; the
        exponential stays NumPy's): NumPy's scalar calls cost the quote path microseconds each."""
        below, above = self._tails(level)
        low = min(center + scale * float(below[band]), center)
        high = max(center + scale * float(above[band]), center)
        estimate = max(float(round(float(np.exp(center)))), 1.0)
        return (
            estimate,
            max(min(float(math.ceil(np.exp(low))), estimate), 1.0),
            max(float(math.floor(np.exp(high))), estimate),
        )

    def _prices(self, center, scale, level, band):
        """Arrays of rows (batches; one listing: `_prices_one`); `band` picks each row's grid."""
        below, above = self._tails(level)
        below, above = below[band], above[band]
        low, high = center + scale * below, center + scale * above
        low, high = np.minimum(low, center), np.maximum(high, center)
        # Whole yuan, as sales are: a sale of p yuan lies within [exp(low), exp(high)] exactly
        # when ceil(exp(low)) <= p <= floor(exp(high)), so the ends round inwards (outwards, each
        # end held up to a yuan more: ~2 points more coverage where accounts sell for tens of
        # yuan); the range always holds the estimate, and never reaches below 1 CNY.
        estimate = np.maximum(np.round(np.exp(center)), 1.0)
        low = np.maximum(np.minimum(np.ceil(np.exp(low)), estimate), 1.0)
        return estimate, low, np.maximum(np.floor(np.exp(high)), estimate)

    def value_frame(
        self, listings: pd.DataFrame, level: float = DEFAULT_LEVEL, as_of: dt.date | None = None
    ) -> pd.DataFrame:
        """Listings with canonical, typed columns -> price_estimate, price_low, price_high."""
        moved = self.level_as_of(listings[CATEGORY.name].to_numpy(), as_of, listings)
        estimate, low, high = self.value_matrix(self.encoder.matrix(listings), level, moved)
        return pd.DataFrame(
            {"price_estimate": estimate, "price_low": low, "price_high": high},
            index=listings.index,
        )

    def contributions(self, listing: Listing) -> np.ndarray:
        """LightGBM's exact per-feature contributions to the log estimate, then the base value:
        they sum to the log of the estimate. The price curve's fans part goes to fans, its
        category part to the category and each flag's part to the flag (each as its distance
        from its mean over the training sales; the means join the base value)."""
        with self._row_lock:
            self.encoder.fill(self._row, listing)
            if self._contributions is None:
                from valuation.scoring import RowScorer

                self._contributions = RowScorer(
                    self.boosters["point"], self._row, contributions=True
                )
            contributions = self._contributions.all()
            if self.curve is not None:
                parts = self.curve.contributions(self._row[0])
                for column, part in zip(PART_COLUMNS, parts, strict=False):
                    contributions[column] += part
                contributions[-1] += sum(self.curve.reference)
        return contributions

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in BOOSTERS:
            (directory / f"{name}.txt").write_text(self.model_text(name))
        if self.comparables is not None:
            self.comparables.save(directory)
        card = {
            **self.card.as_json(),
            "format": BUNDLE_FORMAT,
            "features": list(FEATURE_NAMES),
            "monotone": list(MONOTONE),
            "categories": list(self.encoder.categories),
            "lightgbm": _lightgbm_version(),
        }
        (directory / "bundle.json").write_text(json.dumps(card, ensure_ascii=False, indent=2))
        return directory

    def __reduce__(self):
        """Pickled as data for a Dask cluster's workers: LightGBM's model text and the card (not
        the comparables: workers price, they do not look up sales)."""
        models = {name: self.model_text(name) for name in BOOSTERS}
        card = {**self.card.as_json(), "categories": list(self.encoder.categories)}
        return _from_models, (models, card, self.name, self.version)

    @classmethod
    def load(cls, directory: str | Path) -> Valuer:
        directory = Path(directory)
        card = json.loads((directory / "bundle.json").read_text())
        if card.get("format") not in READS_FORMATS or card.get("features") != list(FEATURE_NAMES):
            raise ValueError(
                f"{directory}: bundle format {card.get('format')} with features "
                f"{card.get('features')} does not match this code ({list(FEATURE_NAMES)})"
            )
        models = {name: (directory / f"{name}.txt").read_text() for name in BOOSTERS}
        encoder = Encoder(tuple(card["categories"]))
        return cls(models, encoder, ModelCard.from_json(card), Comparables.load(directory))


def _from_models(models: dict[str, str], card: dict, model_name, version) -> Valuer:
    encoder = Encoder(tuple(card["categories"]))
    return Valuer(models, encoder, ModelCard.from_json(card), name=model_name, version=version)


def _lightgbm_version() -> str:
    from importlib.metadata import version

    return version("lightgbm")
