"""Quotes: one listing, or up to MAX_BATCH at once."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from api import recording, schemas
from api.answers import (
    ERRORS,
    Advise,
    AsOf,
    ComparablesK,
    Explain,
    Level,
    at_date,
    invalid_entry,
    listing_of,
)
from api.deps import QuotingDep
from api.errors import ServiceError
from valuation.cards import CardError, read_card
from valuation.listing import Listing, ListingError
from valuation.quoting import dates_of, full_quote, model_ref, quote_answer
from valuation.schema import CATEGORY
from valuation.valuer import DEFAULT_LEVEL, Valuer

router = APIRouter()


@router.post(
    "/v1/quote",
    response_model=schemas.Quote,
    response_model_exclude_unset=True,
    responses=ERRORS,
    summary="Value one listing",
    tags=["quotes"],
)
async def quote(
    listing: schemas.ListingIn,
    request: Request,
    quoting: QuotingDep,
    level: Level = DEFAULT_LEVEL,
    explain: Explain = False,
    comparables: ComparablesK = 0,
    as_of: AsOf = None,
    advice: Advise = False,
):
    """The estimated sale price in CNY, its range (80% of sales by default, `level` to change it),
    the model used and, on request, the reasons, the most similar past sales and advice for the
    seller. Valued at the model's market date, or `as_of` an earlier one."""
    listed = listing_of(listing)
    _, body = at_date(
        full_quote,
        quoting.valuer,
        listed,
        listing.listing_id,
        level,
        explain,
        comparables,
        as_of,
        advice,
    )
    return await recording.answer_one(request, quoting, "quote", listed, body)


@router.post(
    "/v1/quote/card",
    response_model=schemas.CardQuote,
    response_model_exclude_unset=True,
    responses=ERRORS,
    summary="Value a listing card pasted from the marketplace's page",
    tags=["quotes"],
)
async def quote_card(
    card: schemas.CardIn,
    request: Request,
    quoting: QuotingDep,
    level: Level = DEFAULT_LEVEL,
    explain: Explain = False,
    comparables: ComparablesK = 0,
    as_of: AsOf = None,
    advice: Advise = False,
):
    """As `/v1/quote`, for a card as a broker copies it (values then labels, as the page
    renders them, or `label: value` lines), plus the listing as read. What the card does not
    give is a 422 naming the field."""
    try:
        values = read_card(card.text)
    except CardError as error:
        raise ServiceError(
            422, "invalid_listing", str(error), ({"field": "text", "message": str(error)},)
        ) from None
    if card.category is not None:
        values[CATEGORY.name] = card.category
    try:
        listed = Listing.parse(values)
    except ListingError as error:
        problems = [{"field": name, "message": why} for name, why in error.problems.items()]
        raise ServiceError(422, "invalid_listing", str(error), problems) from None
    _, body = at_date(
        full_quote, quoting.valuer, listed, None, level, explain, comparables, as_of, advice
    )
    answer = {**body, "listing": asdict(listed)}
    return await recording.answer_one(request, quoting, "card", listed, body, answer)


@router.post(
    "/v1/quotes",
    response_model=schemas.QuotesOut,
    response_model_exclude_unset=True,
    responses=ERRORS,
    summary=f"Value up to {schemas.MAX_BATCH:,} listings at once",
    tags=["quotes"],
)
async def quotes(
    body: schemas.QuotesIn,
    request: Request,
    quoting: QuotingDep,
    level: Level = DEFAULT_LEVEL,
    as_of: AsOf = None,
):
    """Answers in order; a listing that cannot be read gets an error entry naming its fields."""
    valuer = quoting.valuer
    at_date(valuer.level_as_of, [], as_of)  # a date outside the market: refused before any work
    head, results, rows = await run_in_threadpool(_value_batch, body, request, valuer, level, as_of)
    return await recording.answer_batch(quoting, "quotes", head, results, rows)


def _value_batch(
    body: schemas.QuotesIn, request: Request, valuer: Valuer, level: float, as_of: dt.date | None
):
    """The batch's answer (its head and each entry's JSON) and its rows for the record: in a
    worker thread (it can take a while)."""
    model, dates = model_ref(valuer), dates_of(valuer, as_of)
    parsed, results = [], []
    for index, raw in enumerate(body.listings):
        try:
            listing_in = schemas.ListingIn.model_validate(raw)
        except ValidationError as error:
            failure = invalid_entry(index, raw.get("listing_id"), error)
            results.append(recording.as_text(failure))
            continue
        parsed.append((index, listing_in.listing_id, listing_of(listing_in)))
        results.append(None)
    valuations = valuer.value_many([listing for _, _, listing in parsed], level, as_of)
    rows = []
    for (index, listing_id, listing), valuation in zip(parsed, valuations, strict=True):
        result = {"index": index, **quote_answer(valuation, model, listing_id, dates)}
        sent = recording.as_text(body.listings[index])
        rows.append(recording.quote_row(request, "quotes", index, listing, sent, result))
        results[index] = rows[-1]["answer"]
    head = {"model": model, "quoted": len(parsed), "failed": len(results) - len(parsed)}
    return head, results, rows
