"""Why a listing is valued as it is: from a reference price, one step per feature.

LightGBM's per-feature contributions to the log estimate are exact (they sum to it with the base
value). Read multiplicatively, each feature multiplies the price by exp(contribution); taken in a
broker's order (audience, category, then the flags) from the reference price (the model's base
value), the steps' CNY amounts add up to the estimate exactly.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from valuation.encoding import FEATURE_NAMES
from valuation.listing import Listing
from valuation.schema import EXPLANATION
from valuation.valuer import Valuer, columns_of

ORDER = tuple(f.name for f in EXPLANATION)


@dataclass(frozen=True)
class Step:
    feature: str
    value: object
    """The listing's value of that feature."""
    factor: float
    """The price is multiplied by this (1.25 = +25%)."""
    percent: float
    cny: float
    """CNY added (or, negative, taken off) at this step."""


@dataclass(frozen=True)
class Reasons:
    reference_price: float
    """The model's price for an average listing of its training sales, before any feature."""
    steps: list[Step]
    price_estimate: float

    def check(self) -> float:
        """reference + steps - estimate: zero up to float rounding."""
        return self.reference_price + sum(step.cny for step in self.steps) - self.price_estimate


def explain(
    valuer: Valuer, listing: Listing, price_estimate: float, as_of: dt.date | None = None
) -> Reasons:
    """The waterfall to `price_estimate` (the rounded estimate the quote shows).

    Valued `as_of` an earlier date than the market date, one more step (feature "as_of") moves
    the price by the category's level then (and the listing's part of the market's shape, where
    it moved). The last step absorbs the rounding of the estimate to
    whole yuan (at most 0.5 CNY), so that reference + steps = estimate holds exactly as shown.
    """
    contributions = valuer.contributions(listing)
    reference = math.exp(contributions[-1])
    factors = [
        (name, getattr(listing, name), math.exp(contributions[FEATURE_NAMES.index(name)]))
        for name in ORDER
    ]
    if as_of is not None:
        moved = float(valuer.level_as_of([listing.category], as_of, columns_of([listing]))[0])
        factors.append(("as_of", as_of.isoformat(), math.exp(moved)))
    running, steps = reference, []
    for name, value, factor in factors:
        after = running * factor
        steps.append(
            Step(
                feature=name,
                value=value,
                factor=factor,
                percent=(factor - 1) * 100,
                cny=after - running,
            )
        )
        running = after
    last = steps[-1]
    steps[-1] = Step(**{**last.__dict__, "cny": last.cny + price_estimate - running})
    return Reasons(reference_price=reference, steps=steps, price_estimate=price_estimate)
