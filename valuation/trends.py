"""The market index as brokers and sellers read it: is a category going up or down?

A category's index is the price of one listing, month by month: the market's typical listing
(median fans of the dated sales, each flag at its most common value) in that category, valued by
the served model as of the market date and moved by the category's level on each month's last
day (the market date for the last month). The band is 90% of the level's own uncertainty: how
sure the index is of the change between that month and the market date, not how far single
sales scatter around it (that is a quote's range). A category with fewer than MIN_INDEX_SALES
dated sales says so instead of drawing noise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from valuation.listing import Listing
from valuation.market import MarketIndex
from valuation.parsing import SpellingError, parse_category
from valuation.valuer import Valuer

MIN_INDEX_SALES = 100
BAND_Z = 1.645  # 90% of a normal's mass within it
CHANGE_MONTHS = (3, 12)
MAX_SPREAD = 5.0  # a band beyond x148 either way says "unknown" as well, and stays finite in JSON


class NoMarketIndex(LookupError):
    """The model was trained without dates, or the category is not in its data."""


@dataclass(frozen=True)
class IndexPoint:
    month: str
    """YYYY-MM."""
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class CategoryIndex:
    category: str
    market_date: dt.date
    sales: int
    listing: dict
    """The listing the index values (the typical listing, in this category)."""
    index: list[IndexPoint]
    changes: dict[str, float | None]
    """"3m", "12m": the level's change to the market date from that many months before (None
    where the data does not reach back so far or the category has too few sales)."""
    note: str | None = None


def market_of(valuer: Valuer) -> MarketIndex:
    if valuer.market is None:
        raise NoMarketIndex("this model was trained on sales without dates: it has no market index")
    return valuer.market


def category_index(valuer: Valuer, category: str) -> CategoryIndex:
    market = market_of(valuer)
    try:
        category = parse_category(category)  # spelled as a quote reads it
    except SpellingError as error:
        raise NoMarketIndex(str(error)) from error
    if category not in market.sales:
        known = "、".join(sorted(market.sales))
        raise NoMarketIndex(f"no dated sales of category {category!r} (the index has: {known})")
    sales = market.sales[category]
    listing = market.listing_in(category)
    if sales < MIN_INDEX_SALES:
        note = (
            f"only {sales} dated sales of {category}: too few for a price index "
            f"({MIN_INDEX_SALES} needed)"
        )
        return CategoryIndex(category, market.market_date, sales, listing, [], _no_changes(), note)
    now = valuer.value(Listing.parse(listing)).price_estimate
    errors = market.errors.get(category, (0.0,) * len(market.days))
    points = []
    for day in month_ends(market.start, market.market_date):
        at = (day - market.start).days
        level = _level(market, listing, day)
        spread = min(BAND_Z * float(np.interp(at, market.days, errors)), MAX_SPREAD)
        value = now * np.exp(level)
        points.append(
            IndexPoint(
                month=day.strftime("%Y-%m"),
                value=float(np.round(value)),
                low=float(np.floor(value * np.exp(-spread))),
                high=float(np.ceil(value * np.exp(spread))),
            )
        )
    return CategoryIndex(
        category, market.market_date, sales, listing, points, changes(market, category)
    )


def changes(market: MarketIndex, category: str) -> dict[str, float | None]:
    """The level's relative change over the last 3 and 12 months (None where the data is shorter
    or the category has too few sales)."""
    if market.sales.get(category, 0) < MIN_INDEX_SALES:
        return _no_changes()
    result = {}
    listing = market.listing_in(category)
    for months in CHANGE_MONTHS:
        then = _months_before(market.market_date, months)
        if then < market.start:
            result[f"{months}m"] = None
            continue
        result[f"{months}m"] = float(np.round(np.exp(-_level(market, listing, then)) - 1, 4))
    return result


def _level(market: MarketIndex, listing: dict, day: dt.date) -> float:
    """The index's listing's log level on `day` relative to the market date."""
    return float(market.level([listing["category"]], day, {k: [v] for k, v in listing.items()})[0])


def _no_changes() -> dict[str, None]:
    return {f"{months}m": None for months in CHANGE_MONTHS}


def month_ends(start: dt.date, end: dt.date) -> list[dt.date]:
    """The last day of every calendar month from start's to end's, the last one being end."""
    days, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        following = dt.date(year + month // 12, month % 12 + 1, 1)
        days.append(min(following - dt.timedelta(days=1), end))
        year, month = following.year, following.month
    return days


def _months_before(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months earlier (the month's last day where it is shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return dt.date(year, month, min(day.day, last.day))
