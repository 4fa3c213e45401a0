"""Where an asking price falls in the model's price distribution, and what a broker calls it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from valuation.valuer import Valuation

VERDICTS = ("below_market", "fair", "above_market")


@dataclass(frozen=True)
class Appraisal:
    asking_price: float
    percentile: float
    """Share of comparable sales expected below the asking price, 0 to 1."""
    verdict: str
    below_market_under: float
    above_market_over: float
    valuation: Valuation


def appraise(valuation: Valuation, asking_price: float) -> Appraisal:
    """Percentile of `asking_price` in the price distribution the valuation's range describes.

    The estimate is the median and the range bounds the (1 -/+ interval) / 2 quantiles; between and
    beyond them the log price is read as normal, with its own spread below and above the median
    (the range is not symmetric). The verdict is `fair` inside the range, and outside it unless the
    percentile says otherwise, so verdict and percentile never contradict each other.
    """
    tail = round((1 - valuation.interval) / 2, 6)
    z = NormalDist().inv_cdf(1 - tail)
    median = math.log(valuation.price_estimate)
    ask = math.log(asking_price)
    below = (median - math.log(valuation.price_low)) / z
    above = (math.log(valuation.price_high) - median) / z
    # A range bound that sits on the estimate says nothing about that side's spread: borrow the
    # other side's rather than call every price beyond it the median.
    spread = (below if ask < median else above) or below or above
    if spread == 0:
        percentile = 0.5 if ask == median else float(ask > median)
    else:
        percentile = NormalDist().cdf((ask - median) / spread)
    if asking_price < valuation.price_low and percentile < tail:
        verdict = "below_market"
    elif asking_price > valuation.price_high and percentile > 1 - tail:
        verdict = "above_market"
    else:
        verdict = "fair"
    return Appraisal(
        asking_price=asking_price,
        percentile=percentile,
        verdict=verdict,
        below_market_under=tail,
        above_market_over=1 - tail,
        valuation=valuation,
    )
