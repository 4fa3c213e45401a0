"""Appraisals: is an asking price fair?"""

from __future__ import annotations

from fastapi import APIRouter, Request

from api import recording, schemas
from api.answers import ERRORS, AsOf, ComparablesK, Explain, Level, at_date, listing_of
from api.deps import QuotingDep
from valuation.appraisal import DEAL_RATINGS, appraise
from valuation.quoting import full_quote
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
        "asking_price": result.asking_price,
        "percentile": result.percentile,
        "verdict": result.verdict,
        "deal_rating": result.deal_rating,
        "deal_ratings": DEAL_THRESHOLDS,
        "thresholds": {
            "below_market_under": result.below_market_under,
            "above_market_over": result.above_market_over,
        },
        "quote": quote_body,
    }
    return await recording.answer_one(request, quoting, "appraisal", listing, quote_body, answer)
