"""The smoke check of a loaded valuer: a few fixed listings, from a small plain account to a large
verified one, must each get a finite, positive estimate inside its own price range. Run before a
model is swapped in, and by the API's readiness probe."""

from __future__ import annotations

import math

from valuation.listing import Listing
from valuation.schema import FEATURES
from valuation.valuer import Valuer

SMOKE_LISTINGS = tuple(
    Listing(**{field.name: field.smoke[i] for field in FEATURES})
    for i in range(len(FEATURES[0].smoke))
)
"""From the schema's `smoke` values: a small account with violations, a plain one of an unknown
category, a large verified one."""


def smoke_problems(valuer: Valuer) -> list[str]:
    """What is wrong with the valuer's answers to the smoke listings; empty when nothing is."""
    problems = []
    for listing in SMOKE_LISTINGS:
        try:
            valuation = valuer.value(listing)
        except Exception as error:  # any failure to answer is the finding, not a crash
            problems.append(f"{listing}: {type(error).__name__}: {error}")
            continue
        low, estimate, high = valuation.price_low, valuation.price_estimate, valuation.price_high
        if not all(math.isfinite(price) for price in (low, estimate, high)):
            problems.append(f"{listing}: a price is not finite ({low}, {estimate}, {high})")
        elif not estimate > 0:
            problems.append(f"{listing}: the estimate {estimate} is not positive")
        elif not low <= estimate <= high:
            problems.append(f"{listing}: the estimate {estimate} is outside its range {low}-{high}")
    return problems
