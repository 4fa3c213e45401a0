"""The market over time: each category's price level by month, relative to the market date.

A model trained on dated sales values listings at its market date (the latest sale date in its
data): every training sale's price is first restated to that date with this index, so the point
model itself answers "what would this sell for now". The index is data in the model card: log
price levels on a grid of days since the first sale, one row for the whole market and one per
category (the whole market's where a category has too few sales to say more), each 0 at the market
date. Quoting as of an earlier date moves the estimate by the category's level at that date.
Where the market's shape moved too (large accounts gaining on small ones, a flag's premium
growing), the index holds how fast (`shape`), and training restates each sale by it as well.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from valuation.schema import FANS, FLAGS

DAYS_PER_MONTH = 30.4375
DAYS_PER_YEAR = 365.25


def shape_columns(listings) -> dict[str, np.ndarray]:
    """What the market's shape is read in, from listings (a frame, or a mapping of columns):
    log10 fans and each flag."""
    fans = np.asarray(listings[FANS.name], dtype=float)
    columns = {FANS.name: np.log10(np.maximum(fans, 1.0))}
    for flag in FLAGS:
        columns[flag.name] = np.asarray(listings[flag.name], dtype=float)
    return columns


def shape_level(shape: dict, listings, days_before) -> np.ndarray:
    """Each listing's log price `days_before` the market date relative to today's shape (a
    MarketIndex's `shape`: 0 where it held still, and at the market date).

    Per shape column, a line in the sale's age (`per_year`) and, where the column's part moved
    faster lately than the line says, bends: one more slope for the ages under each of
    `bend_years` (a column's part at age a is per_year a + sum of bend min(a, knot))."""
    years = np.asarray(days_before, dtype=float) / DAYS_PER_YEAR
    if not shape:
        return np.zeros_like(years)
    columns = shape_columns(listings)
    bends = shape.get("bends", {})
    total = np.zeros_like(years)
    for name, slope in shape["per_year"].items():
        path = slope * years
        for bend, knot in zip(bends.get(name, ()), shape.get("bend_years", ())):
            path = path + bend * np.minimum(years, knot)
        total = total + path * (columns[name] - shape["centres"][name])
    return total


class DateOutsideMarket(ValueError):
    """An `as_of` after the market date (trees do not extrapolate) or before the first sale."""


@dataclass(frozen=True)
class MarketIndex:
    start: dt.date
    """Day 0 of the grid: the 0.5th percentile of the sale dates (older sales take its level)."""
    market_date: dt.date
    """The latest sale's date: every quote's date unless `as_of` names an earlier one."""
    days: tuple[float, ...]
    """Grid points, days since `start`, increasing; the last is the market date."""
    overall: tuple[float, ...]
    """The whole market's log level at each grid point, 0 at the market date."""
    by_category: dict[str, tuple[float, ...]]
    """Each category's log level at each grid point, 0 at the market date."""
    sales: dict[str, int]
    """Dated sales each category's level was estimated from."""
    typical: dict = field(default_factory=dict)
    """The market's typical listing, but for its category: the median fans of the dated sales and
    each flag's most common value. The index's values are this listing's price in a category."""
    errors: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """Standard error of each category's level at each grid point (0 at the market date): how
    sure the index is of the change between that day and the market date."""
    shape: dict = field(default_factory=dict)
    """How the market's shape moved, where it did (training's `shape_drift`): the log change per
    year of a sale's age per unit of log10 fans and of each flag, about their centres; training
    restates each sale's price to today's shape with it. Empty: the shape held still."""
    bandwidth_days: float | None = None
    """The kernel's width the levels were read with, chosen by training for this market (a
    market that turns needs a narrow one); None on cards from before it was chosen (180)."""

    def check(self, day: dt.date) -> dt.date:
        if isinstance(day, dt.datetime):  # a timestamp (pandas' too): its day
            day = day.date()
        if day > self.market_date:
            raise DateOutsideMarket(
                f"as_of {day} is after the market date {self.market_date}: the model knows "
                "prices up to its latest sale, not beyond"
            )
        if day < self.start:
            raise DateOutsideMarket(
                f"as_of {day} is before the market index's first day ({self.start})"
            )
        return day

    def level(self, categories, day: dt.date, listings=None) -> np.ndarray:
        """Log level of each category at `day` relative to the market date (0 there); the whole
        market's for a category the index does not know. With `listings` (a frame or a mapping
        of columns holding fans and the flags, in the categories' order), each listing's level:
        where the market's shape moved, its own part of that too."""
        day = self.check(day)
        at = (day - self.start).days
        level = self.levels_at(categories, np.full(len(categories), float(at)))
        if listings is not None and self.shape:
            level = level + shape_level(self.shape, listings, (self.market_date - day).days)
        return level

    def listing_in(self, category: str) -> dict:
        """The listing the index values: the typical listing, in `category`."""
        return {**self.typical, "category": category}

    def path(self, category: str) -> np.ndarray:
        """The index's listing in `category` (`listing_in`): its log level at each grid point
        relative to the market date, its part of a moving shape included (what `level` answers
        for that listing on those days)."""
        days = np.asarray(self.days, dtype=float)
        level = self.levels_at(np.full(len(days), category, dtype=object), days)
        listing = {k: np.full(len(days), v) for k, v in self.listing_in(category).items()}
        return level + shape_level(self.shape, listing, days[-1] - days)

    def levels_at(self, categories, days_since_start: np.ndarray) -> np.ndarray:
        """Log level of each (category, day) pair (the whole market's for a category the index
        does not know); days clipped to the grid."""
        overall = np.interp(days_since_start, self.days, self.overall)
        return self._on_grid(self.by_category, categories, days_since_start, overall)

    def errors_at(self, categories, days_since_start: np.ndarray) -> np.ndarray:
        """The standard error of each (category, day) pair's level (`errors`; 0 for a category
        the index holds no error for); days clipped to the grid."""
        none = np.zeros(len(days_since_start))
        return self._on_grid(self.errors, categories, days_since_start, none)

    def _on_grid(self, table: dict, categories, days: np.ndarray, result: np.ndarray):
        """`result`, with each category of `table` read off its grid values on its days."""
        categories = np.asarray(categories, dtype=object)
        for category, values in table.items():
            rows = categories == category
            result[rows] = np.interp(days[rows], self.days, values)
        return result

    def as_card(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "market_date": self.market_date.isoformat(),
            "days": list(self.days),
            "overall": list(self.overall),
            "by_category": {c: list(v) for c, v in self.by_category.items()},
            "sales": dict(self.sales),
            "typical": dict(self.typical),
            "errors": {c: list(v) for c, v in self.errors.items()},
            "shape": dict(self.shape),
            "bandwidth_days": self.bandwidth_days,
        }

    @classmethod
    def from_card(cls, card: dict | None) -> MarketIndex | None:
        if not card:
            return None
        return cls(
            start=dt.date.fromisoformat(card["start"]),
            market_date=dt.date.fromisoformat(card["market_date"]),
            days=tuple(card["days"]),
            overall=tuple(card["overall"]),
            by_category={c: tuple(v) for c, v in card["by_category"].items()},
            sales=dict(card["sales"]),
            typical=dict(card.get("typical", {})),
            errors={c: tuple(v) for c, v in card.get("errors", {}).items()},
            shape=dict(card.get("shape", {})),
            bandwidth_days=card.get("bandwidth_days"),
        )
