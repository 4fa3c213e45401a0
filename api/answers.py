"""What the quoting routes share beyond the quote service (`valuation.quoting`, which writes the
answer's shape for the API and the CLI alike): the request's listing, the query parameters, a date
outside the market answered as a 422, and the error answers the routes document."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Query

from api.errors import ServiceError, field_problems
from api.schemas import ErrorOut
from valuation.comparables import MAX_K
from valuation.listing import Listing
from valuation.market import DateOutsideMarket
from valuation.parsing import SpellingError, parse_listing_id
from valuation.valuer import MAX_LEVEL, MIN_LEVEL

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
Advise = Annotated[
    bool,
    Query(
        description="Add advice: each change a seller can make (violations cleared, live "
        "permission opened, verified) with the price after it."
    ),
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


def at_date(value, *args):
    """`value(*args)`, a date outside the model's market answered as a 422 on `as_of`."""
    try:
        return value(*args)
    except DateOutsideMarket as error:
        raise ServiceError(
            422, "invalid_request", f"as_of: {error}", ({"field": "as_of", "message": str(error)},)
        ) from error


def invalid_entry(index: int, listing_id: object, error) -> dict:
    """A batch's entry for an item that cannot be read: its fields' problems, its id if
    readable."""
    return {
        "index": index,
        "listing_id": readable_id(listing_id),
        "error": "invalid_listing",
        "fields": field_problems(error.errors()),
    }
