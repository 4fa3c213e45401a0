"""The quote service: one listing's answer, the shape the API and the CLI both give.

`full_quote` values a listing and writes its answer (estimate and range, the model and dates it
was valued with, and on request its reasons and comparable sales); `quote_answer` writes the part
every quote has, a batch's entries included.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from valuation.listing import Listing
from valuation.reasons import explain
from valuation.valuer import Valuation, Valuer


def model_ref(valuer: Valuer) -> dict:
    return {"name": valuer.name, "version": valuer.version}


def dates_of(valuer: Valuer, as_of: dt.date | None) -> dict:
    """The market date and the date a quote values at (both None for a model without dates)."""
    market_date = valuer.market_date and valuer.market_date.isoformat()
    return {"market_date": market_date, "as_of": as_of.isoformat() if as_of else market_date}


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
        **dates,
        "model": model,
    }


def full_quote(
    valuer, listing: Listing, listing_id, level: float, explain_it: bool, k: int, as_of=None
):
    """A single listing's quote, with its reasons and comparable sales when asked for; a date
    outside the model's market raises DateOutsideMarket."""
    valuation = valuer.value(listing, level, as_of)
    body = quote_answer(valuation, model_ref(valuer), listing_id, dates_of(valuer, as_of))
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
