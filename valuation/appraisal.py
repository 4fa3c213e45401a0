"""Where an asking price falls in the model's price distribution, and what a broker calls it."""

from __future__ import annotations

from dataclasses import dataclass

from valuation.valuer import Valuation

VERDICTS = ("below_market", "fair", "above_market")
DEAL_RATINGS = (
    ("great", 0.10),
    ("good", 0.30),
    ("fair", 0.70),
    ("high", 0.90),
    ("overpriced", 1.0),
)
"""Deal ratings, a buyer's view, from the asking price's percentile in the listing's calibrated
price distribution: each rating up to its percentile (great under 10%: nine in ten such listings
sell for more; overpriced over 90%)."""


def deal_rating(percentile: float) -> str:
    for rating, upto in DEAL_RATINGS:
        if percentile < upto:
            return rating
    return DEAL_RATINGS[-1][0]


@dataclass(frozen=True)
class Appraisal:
    asking_price: float
    percentile: float
    """Share of comparable sales expected below the asking price, 0 to 1."""
    verdict: str
    deal_rating: str
    below_market_under: float
    above_market_over: float
    valuation: Valuation


def appraise(valuation: Valuation, asking_price: float) -> Appraisal:
    """The asking price read against the same calibrated distribution the price range comes from.

    `fair` inside the range, `below_market` under it, `above_market` over it: the range's own
    tails, (1 - level) / 2 and (1 + level) / 2, are the percentile thresholds.
    """
    tail = round((1 - valuation.interval) / 2, 6)
    if asking_price < valuation.price_low:
        verdict = "below_market"
    elif asking_price > valuation.price_high:
        verdict = "above_market"
    else:
        verdict = "fair"
    percentile = valuation.distribution.percentile(asking_price)
    return Appraisal(
        asking_price=asking_price,
        percentile=percentile,
        verdict=verdict,
        deal_rating=deal_rating(percentile),
        below_market_under=tail,
        above_market_over=round(1 - tail, 6),
        valuation=valuation,
    )
