"""The quote service: one listing's answer, the shape the API and the CLI both give.

`full_quote` values a listing and writes its answer (estimate and range, the model and dates it
was valued with, and on request its reasons and comparable sales); `quote_answer` writes the part
every quote has, a batch's entries included.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, replace
from functools import lru_cache
from statistics import NormalDist

from valuation.listing import Listing
from valuation.reasons import explain
from valuation.schema import FEATURES
from valuation.valuer import Valuation, Valuer


def model_ref(valuer: Valuer) -> dict:
    return {"name": valuer.name, "version": valuer.version}


def dates_of(valuer: Valuer, as_of: dt.date | None) -> dict:
    """The market date and the date a quote values at (both None for a model without dates)."""
    market_date = valuer.market_date and valuer.market_date.isoformat()
    return {"market_date": market_date, "as_of": as_of.isoformat() if as_of else market_date}


CONFIDENCE = (("high", 0.15), ("medium", 0.30))
"""A quote's confidence grade from its range's spread: ln(high / low) over the width, in standard
deviations, of a normal range at the same level (so the grade does not depend on the level asked
for). Under 0.15 high (an 80% range within about 1.5x from low to high), under 0.30 medium (about
2.2x), else low."""


@lru_cache(maxsize=64)
def _sigmas(level: float) -> float:
    return 2 * NormalDist().inv_cdf((1 + level) / 2)


def confidence(low: float, high: float, level: float) -> str:
    spread = math.log(max(high, 1.0) / max(low, 1.0)) / _sigmas(level)
    for grade, under in CONFIDENCE:
        if spread < under:
            return grade
    return "low"


def quote_answer(valuation: Valuation, model: dict, listing_id: str | None, dates: dict) -> dict:
    return {
        "listing_id": listing_id,
        "price_estimate": valuation.price_estimate,
        "price_low": valuation.price_low,
        "price_high": valuation.price_high,
        "interval": valuation.interval,
        "currency": valuation.currency,
        "known_category": valuation.known_category,
        "notes": valuation.notes,
        "confidence": confidence(valuation.price_low, valuation.price_high, valuation.interval),
        **dates,
        "model": model,
    }


def advice(valuer: Valuer, listing: Listing, valuation: Valuation, level: float, as_of=None):
    """Each change a seller can make (a flag the schema marks `seller_can_change`, moved the way
    the market pays for), with the quote of the listing so changed and the difference."""
    entries = []
    for field in FEATURES:
        better = field.monotone > 0
        if not field.seller_can_change or getattr(listing, field.name) == better:
            continue
        after = valuer.value(replace(listing, **{field.name: better}), level, as_of)
        entries.append(
            {
                "feature": field.name,
                "to": better,
                "price_estimate": after.price_estimate,
                "price_low": after.price_low,
                "price_high": after.price_high,
                "change": after.price_estimate - valuation.price_estimate,
            }
        )
    return entries


def full_quote(
    valuer,
    listing: Listing,
    listing_id,
    level: float,
    explain_it: bool,
    k: int,
    as_of=None,
    advise: bool = False,
):
    """A single listing's quote, with its reasons, comparable sales and advice when asked for;
    a date outside the model's market raises DateOutsideMarket."""
    valuation = valuer.value(listing, level, as_of)
    body = quote_answer(valuation, model_ref(valuer), listing_id, dates_of(valuer, as_of))
    if advise:
        body["advice"] = advice(valuer, listing, valuation, level, as_of)
    if explain_it:
        reasons = explain(valuer, listing, valuation.price_estimate, as_of)
        body["reasons"] = {
            "reference_price": reasons.reference_price,
            "steps": [step.__dict__ for step in reasons.steps],
        }
    if k:
        found = valuer.comparables.find(listing, k) if valuer.comparables else []
        body["comparables"] = [
            {
                "listing_id": comp.listing_id,
                **asdict(comp.listing),
                "price": comp.price,
                "sold_at": comp.sold_at,
                "similarity": comp.similarity,
            }
            for comp in found
        ]
    return valuation, body
