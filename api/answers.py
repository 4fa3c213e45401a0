"""The answers' shapes, written once for every route that quotes: a quote's body (with its reasons
and comparable sales on request), the model and dates it names, the query parameters they share,
and the error answers the routes document."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated

from fastapi import Query

from api.errors import ServiceError
from api.schemas import ErrorOut
from valuation.comparables import MAX_K
from valuation.listing import Listing
from valuation.market import DateOutsideMarket
from valuation.parsing import SpellingError, parse_listing_id
from valuation.reasons import explain
from valuation.valuer import MAX_LEVEL, MIN_LEVEL, Valuation, Valuer

ERRORS = {
    400: {
        "model": ErrorOut,
        "description": "The request's Content-Length is malformed (not a number, or repeated "
        "with different values).",
    },
    413: {"model": ErrorOut, "description": "The body is over the size limit (4 MiB by default)."},
    422: {"model": ErrorOut, "description": "A field is missing or cannot be read; each is named."},
    503: {
        "model": ErrorOut,
        "description": "No model is loaded (`no_model`), or the answer could not be put on record "
        "(`record_unavailable`): it is not given.",
    },
}


def listing_of(body) -> Listing:
    return Listing(**{name: getattr(body, name) for name in Listing.__slots__})


def readable_id(value: object) -> str | None:
    """The listing_id of a listing that failed, echoed only when it is itself readable: a raw
    lone surrogate would make the whole answer unencodable, a 10,000-character one would bloat it."""
    try:
        return parse_listing_id(value)
    except SpellingError:
        return None


def model_ref(valuer: Valuer) -> dict:
    return {"name": valuer.card.get("model_name"), "version": valuer.version}


Level = Annotated[
    float,
    Query(
        ge=MIN_LEVEL,
        le=MAX_LEVEL,
        description="Share of sales the price range should hold, from 0.5 to 0.95.",
    ),
]
Explain = Annotated[
    bool, Query(description="Add the reasons: each feature's contribution, in CNY and percent.")
]
AsOf = Annotated[
    dt.date | None,
    Query(
        description="Value as of this date (YYYY-MM-DD), within the model's data; by default the "
        "market date (the latest sale the model learned from). A later date is refused: the "
        "model knows prices up to its market date, not beyond."
    ),
]
ComparablesK = Annotated[
    int, Query(ge=0, le=MAX_K, description="Add this many comparable past sales (0 = none).")
]


def dates_of(valuer: Valuer, as_of: dt.date | None) -> dict:
    """The market date and the date a quote values at (both None for a model without dates)."""
    market_date = valuer.market_date and valuer.market_date.isoformat()
    return {"market_date": market_date, "as_of": as_of.isoformat() if as_of else market_date}


def at_date(value, *args):
    """`value(*args)`, a date outside the model's market answered as a 422 on `as_of`."""
    try:
        return value(*args)
    except DateOutsideMarket as error:
        raise ServiceError(
            422, "invalid_request", f"as_of: {error}", ({"field": "as_of", "message": str(error)},)
        ) from error


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
    """A single listing's quote, with its reasons and comparable sales when asked for."""
    if as_of is None:  # the quote path: no date to check
        valuation = valuer.value(listing, level)
    else:
        valuation = at_date(valuer.value, listing, level, as_of)
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
