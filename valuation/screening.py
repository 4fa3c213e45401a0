"""Sales screening: a reported sale far outside its listing's own price distribution is kept but
marked suspect, and left out of training until an operator confirms it.

Suspect when the price lies beyond the listing's 99.9% range (its calibrated distribution's
0.05% and 99.95% points: the grid's outermost quantiles, 0.5% and 99.5%, stretched by a normal
tail's ratio), or when it has a price typo's shape (5x or more away from the estimate, either
way: an extra or a missing zero is 10x)."""

from __future__ import annotations

import math

from valuation.listing import Listing
from valuation.valuer import Valuer

TAIL_STRETCH = 3.2905 / 2.5758
"""A normal's 99.95% point over its 99.5% point: the grid's outermost quantile to the 99.9%
range's end."""
TYPO_RATIO = 5.0


def suspicion(valuer: Valuer, listing: Listing, price: float) -> str | None:
    """Why the sale is suspect, or None when it looks like a sale of this listing."""
    valuation = valuer.value(listing)
    distribution = valuation.distribution
    estimate = valuation.price_estimate
    grid = distribution.grid
    z = (math.log(price) - distribution.center) / distribution.scale
    low, high = grid.z[0] * TAIL_STRETCH, grid.z[-1] * TAIL_STRETCH
    if price >= estimate * TYPO_RATIO or price <= estimate / TYPO_RATIO:
        return f"{price / estimate:.2g}x the estimate of {estimate:,.0f} CNY: a price typo's shape"
    if not low <= z <= high:
        return f"outside the listing's 99.9% range around the estimate of {estimate:,.0f} CNY"
    return None
