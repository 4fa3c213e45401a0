"""The smoke check of a loaded valuer: what a broken model would violate, on a few fixed listings
(from a small account with violations to a large verified one). Run before a model is swapped in,
and by the API's readiness probe.

For each smoke listing:
- a finite, positive estimate, ordered low <= estimate <= high (the valuer keeps this for any
  finite model: it catches NaN and infinities);
- finite contributions that add up to the estimate (the explanation's promise);
- the estimate within the training prices' span, widened SPAN_SLACK times each way (the market
  index may move prices past the span; a broken model is off by orders of magnitude);
- market logic: the listing with any one feature moved the way the price may only rise (more
  fans, no violations, live permission opened, verified) is not valued lower.
"""

from __future__ import annotations

import math
from dataclasses import replace

from valuation.listing import Listing
from valuation.schema import FEATURES
from valuation.valuer import Valuer

SMOKE_LISTINGS = tuple(
    Listing(**{field.name: field.smoke[i] for field in FEATURES})
    for i in range(len(FEATURES[0].smoke))
)
"""From the schema's `smoke` values: a small account with violations, a plain one of an unknown
category, a large verified one."""
SPAN_SLACK = 3.0
ROUNDING = 1.0  # CNY: the estimate is rounded to the yuan, each step's price too


def _raised(listing: Listing) -> list[tuple[str, Listing]]:
    """The listing with each monotone feature moved the way the price may only rise."""
    moved = []
    for field in FEATURES:
        value = getattr(listing, field.name)
        if field.monotone == 0:
            continue
        if field.kind == "count":
            higher = min(value * 10 + 10, field.maximum or value * 10 + 10)
            lower = value // 10
            to = higher if field.monotone > 0 else lower
        else:
            to = field.monotone > 0
        if to != value:
            moved.append((f"{field.name} {value} -> {to}", replace(listing, **{field.name: to})))
    return moved


def smoke_problems(valuer: Valuer) -> list[str]:
    """What is wrong with the valuer's answers to the smoke listings; empty when nothing is."""
    problems = []
    span = valuer.card.price_span
    for listing in SMOKE_LISTINGS:
        try:
            problems += _listing_problems(valuer, listing, span)
        except Exception as error:  # any failure to answer is the finding, not a crash
            problems.append(f"{listing}: {type(error).__name__}: {error}")
    return problems


def _listing_problems(valuer: Valuer, listing: Listing, span) -> list[str]:
    valuation = valuer.value(listing)
    low, estimate, high = valuation.price_low, valuation.price_estimate, valuation.price_high
    if not all(math.isfinite(price) for price in (low, estimate, high)):
        return [f"{listing}: a price is not finite ({low}, {estimate}, {high})"]
    if not estimate > 0:
        return [f"{listing}: the estimate {estimate} is not positive"]
    problems = []
    if not low <= estimate <= high:
        problems.append(f"{listing}: the estimate {estimate} is outside its range {low}-{high}")
    contributions = valuer.contributions(listing)
    if not all(math.isfinite(c) for c in contributions):
        problems.append(f"{listing}: a contribution is not finite ({list(contributions)})")
    elif abs(math.exp(sum(contributions)) - estimate) > ROUNDING + 1e-6 * estimate:
        problems.append(
            f"{listing}: the contributions add up to {math.exp(sum(contributions)):,.2f}, "
            f"not the estimate {estimate:,.0f}"
        )
    if span is not None and not span[0] / SPAN_SLACK <= estimate <= span[1] * SPAN_SLACK:
        problems.append(
            f"{listing}: the estimate {estimate:,.0f} is far outside the training prices "
            f"({span[0]:,.0f}-{span[1]:,.0f})"
        )
    for change, raised in _raised(listing):
        after = valuer.value(raised).price_estimate
        if after < estimate - ROUNDING:
            problems.append(
                f"{listing}: {change} lowers the estimate {estimate:,.0f} to {after:,.0f}"
            )
    return problems
