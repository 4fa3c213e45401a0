"""Appraisals: is an asking price fair?"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from api import recording, schemas
from api.answers import (
    ERRORS,
    AsOf,
    ComparablesK,
    Explain,
    Level,
    at_date,
    invalid_entry,
    listing_of,
)
from api.deps import QuotingDep
from valuation.appraisal import DEAL_RATINGS, appraise
from valuation.quoting import dates_of, full_quote, model_ref, quote_answer
from valuation.valuer import DEFAULT_LEVEL

router = APIRouter()
DEAL_THRESHOLDS = {rating: upto for rating, upto in DEAL_RATINGS}


@router.post(
    "/v1/appraisal",
    response_model=schemas.AppraisalOut,
    response_model_exclude_unset=True,
    responses=ERRORS,
    summary="Is an asking price fair?",
    tags=["quotes"],
)
async def appraisal(
    body: schemas.AppraisalIn,
    request: Request,
    quoting: QuotingDep,
    level: Level = DEFAULT_LEVEL,
    explain: Explain = False,
    comparables: ComparablesK = 0,
    as_of: AsOf = None,
):
    """Where the asking price falls in the model's calibrated price distribution for this listing
    (its percentile), a verdict (`fair` inside the price range, `below_market` or
    `above_market` outside it) and a deal rating, a buyer's view on five steps (`great` under the
    10th percentile, `good` to the 30th, `fair` to the 70th, `high` to the 90th, `overpriced`
    above). The thresholds of both are in the answer."""
    listing = listing_of(body.listing)
    valuation, quote_body = at_date(
        full_quote,
        quoting.valuer,
        listing,
        body.listing.listing_id,
        level,
        explain,
        comparables,
        as_of,
    )
    result = appraise(valuation, body.asking_price)
    answer = {
        **_rated(result),
        "deal_ratings": DEAL_THRESHOLDS,
        "thresholds": {
            "below_market_under": result.below_market_under,
            "above_market_over": result.above_market_over,
        },
        "quote": quote_body,
    }
    return await recording.answer_one(request, quoting, "appraisal", listing, quote_body, answer)


@router.post(
    "/v1/appraisals",
    response_model=schemas.AppraisalsOut,
    responses=ERRORS,
    summary=f"Rate up to {schemas.MAX_BATCH:,} asking prices at once (a catalogue)",
    tags=["quotes"],
)
async def appraisals(
    body: schemas.AppraisalsIn,
    request: Request,
    quoting: QuotingDep,
    level: Level = DEFAULT_LEVEL,
):
    """Each asking price's percentile, verdict and deal rating, in order; an appraisal that
    cannot be read gets an error entry naming its fields."""
    head, results, rows = await run_in_threadpool(
        _appraise_batch, body, request, quoting.valuer, level
    )
    return await recording.answer_batch(quoting, "appraisals", head, results, rows)


def _appraise_batch(body: schemas.AppraisalsIn, request: Request, valuer, level: float):
    model, dates = model_ref(valuer), dates_of(valuer, None)
    results, rows = [], []
    for index, raw in enumerate(body.appraisals):
        try:
            item = schemas.AppraisalIn.model_validate(raw)
        except ValidationError as error:
            listing = raw.get("listing")
            listing_id = listing.get("listing_id") if isinstance(listing, dict) else None
            results.append(recording.as_text(invalid_entry(index, listing_id, error)))
            continue
        listing = listing_of(item.listing)
        valuation = valuer.value(listing, level)
        result = {
            "index": index,
            **_rated(appraise(valuation, item.asking_price)),
            "quote": quote_answer(valuation, model, item.listing.listing_id, dates),
        }
        sent = recording.as_text(raw)
        rows.append(
            recording.quote_row(
                request, "appraisals", index, listing, sent, result["quote"], result
            )
        )
        results.append(rows[-1]["answer"])
    appraised = len(rows)
    head = {
        "model": model,
        "appraised": appraised,
        "failed": len(results) - appraised,
        "deal_ratings": DEAL_THRESHOLDS,
    }
    return head, results, rows


def _rated(appraisal) -> dict:
    """What an appraisal answers of the asking price, single or in a catalogue."""
    return {
        "asking_price": appraisal.asking_price,
        "percentile": appraisal.percentile,
        "verdict": appraisal.verdict,
        "deal_rating": appraisal.deal_rating,
    }
