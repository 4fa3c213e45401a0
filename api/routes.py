"""The endpoints. Quote and appraisal are `async def` on purpose: their work (~50 us, no I/O) costs
less than the hop to a worker thread that a plain `def` would take. The batch's valuation, which
can run for a noticeable time, and the sales route's lookup run in the thread pool. Every answer
waits for its record's commit on the event loop (`api.recording.record`)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from api import recording, schemas
from api.errors import ServiceError, field_problems
from api.schemas import ErrorOut
from valuation import records
from valuation.appraisal import appraise
from valuation.comparables import MAX_K
from valuation.listing import Listing
from valuation.market import DateOutsideMarket
from valuation.parsing import SpellingError, parse_listing_id
from valuation.reasons import explain
from valuation.smoke import smoke_problems
from valuation.trends import NoMarketIndex, category_index, changes, market_of
from valuation.valuer import DEFAULT_LEVEL, MAX_LEVEL, MIN_LEVEL, Valuation, Valuer

log = logging.getLogger("api")
router = APIRouter()

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


async def current_valuer(request: Request) -> Valuer:
    valuer = request.app.state.valuer
    if valuer is None:
        settings = request.app.state.settings
        raise ServiceError(
            503,
            "no_model",
            f"no model is loaded ({settings.model_name}@{settings.model_alias} is not registered); "
            "train one with `valuation train --data PATH`",
        )
    return valuer


CurrentValuer = Annotated[Valuer, Depends(current_valuer)]


def _listing(body) -> Listing:
    return Listing(**{name: getattr(body, name) for name in Listing.__slots__})


def _readable_id(value: object) -> str | None:
    """The listing_id of a listing that failed, echoed only when it is itself readable: a raw
    lone surrogate would make the whole answer unencodable, a 10,000-character one would bloat it."""
    try:
        return parse_listing_id(value)
    except SpellingError:
        return None


def _model_ref(valuer: Valuer) -> dict:
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


def _dates(valuer: Valuer, as_of: dt.date | None) -> dict:
    """The market date and the date a quote values at (both None for a model without dates)."""
    market_date = valuer.market_date and valuer.market_date.isoformat()
    return {"market_date": market_date, "as_of": as_of.isoformat() if as_of else market_date}


def _at_date(value, *args):
    """`value(*args)`, a date outside the model's market answered as a 422 on `as_of`."""
    try:
        return value(*args)
    except DateOutsideMarket as error:
        raise ServiceError(
            422, "invalid_request", f"as_of: {error}", ({"field": "as_of", "message": str(error)},)
        ) from error


def _quote(valuation: Valuation, model: dict, listing_id: str | None, dates: dict) -> dict:
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


def _full_quote(
    valuer, listing: Listing, listing_id, level: float, explain_it: bool, k: int, as_of=None
):
    """A single listing's quote, with its reasons and comparable sales when asked for."""
    if as_of is None:  # the quote path: no date to check
        valuation = valuer.value(listing, level)
    else:
        valuation = _at_date(valuer.value, listing, level, as_of)
    body = _quote(valuation, _model_ref(valuer), listing_id, _dates(valuer, as_of))
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
    valuer: CurrentValuer,
    level: Level = DEFAULT_LEVEL,
    explain: Explain = False,
    comparables: ComparablesK = 0,
    as_of: AsOf = None,
):
    """The estimated sale price in CNY, its range (80% of sales by default, `level` to change it),
    the model used and, on request, the reasons and the most similar past sales. Valued at the
    model's market date, or `as_of` an earlier one."""
    listed = _listing(listing)
    _, body = _full_quote(valuer, listed, listing.listing_id, level, explain, comparables, as_of)
    sent = await recording.sent_body(request)
    row = recording.quote_row(request, "quote", 0, listed, sent, body)
    await recording.record(request, records.quotes, [row])
    _count_quotes(request, "quote")
    return recording.as_given(row)


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
    valuer: CurrentValuer,
    level: Level = DEFAULT_LEVEL,
    as_of: AsOf = None,
):
    """Answers in order; a listing that cannot be read gets an error entry naming its fields."""
    _at_date(valuer.level_as_of, [], as_of)  # a date outside the market: refused before any work
    head, results, rows = await run_in_threadpool(_value_batch, body, request, valuer, level, as_of)
    if rows:
        await recording.record(request, records.quotes, rows)
    _count_quotes(request, "quotes", head["quoted"])
    return recording.batch_answer(head, results)


def _value_batch(
    body: schemas.QuotesIn, request: Request, valuer: Valuer, level: float, as_of: dt.date | None
):
    """The batch's answer (its head and each entry's JSON) and its rows for the record: in a
    worker thread (it can take a while)."""
    model, dates = _model_ref(valuer), _dates(valuer, as_of)
    parsed, results = [], []
    for index, raw in enumerate(body.listings):
        try:
            listing_in = schemas.ListingIn.model_validate(raw)
        except ValidationError as error:
            failure = {
                "index": index,
                "listing_id": _readable_id(raw.get("listing_id")),
                "error": "invalid_listing",
                "fields": field_problems(error.errors()),
            }
            results.append(recording.as_text(failure))
            continue
        parsed.append((index, listing_in.listing_id, _listing(listing_in)))
        results.append(None)
    valuations = valuer.value_many([listing for _, _, listing in parsed], level, as_of)
    rows = []
    for (index, listing_id, listing), valuation in zip(parsed, valuations, strict=True):
        result = {"index": index, **_quote(valuation, model, listing_id, dates)}
        sent = recording.as_text(body.listings[index])
        rows.append(recording.quote_row(request, "quotes", index, listing, sent, result))
        results[index] = rows[-1]["answer"]
    head = {"model": model, "quoted": len(parsed), "failed": len(results) - len(parsed)}
    return head, results, rows


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
    valuer: CurrentValuer,
    level: Level = DEFAULT_LEVEL,
    explain: Explain = False,
    comparables: ComparablesK = 0,
    as_of: AsOf = None,
):
    """Where the asking price falls in the model's calibrated price distribution for this listing
    (its percentile), and a verdict: `fair` inside the price range, `below_market` or
    `above_market` outside it. The thresholds are in the answer."""
    listing = _listing(body.listing)
    valuation, quote_body = _full_quote(
        valuer, listing, body.listing.listing_id, level, explain, comparables, as_of
    )
    result = appraise(valuation, body.asking_price)
    answer = {
        "asking_price": result.asking_price,
        "percentile": result.percentile,
        "verdict": result.verdict,
        "thresholds": {
            "below_market_under": result.below_market_under,
            "above_market_over": result.above_market_over,
        },
        "quote": quote_body,
    }
    sent = await recording.sent_body(request)
    row = recording.quote_row(request, "appraisal", 0, listing, sent, quote_body, answer)
    await recording.record(request, records.quotes, [row])
    _count_quotes(request, "appraisal")
    return recording.as_given(row)


@router.post(
    "/v1/sales",
    status_code=201,
    response_model=schemas.SaleOut,
    responses=ERRORS,
    summary="Report a sale: the price a listing really sold for",
    tags=["sales"],
)
async def sale(body: schemas.SaleIn, request: Request):
    """Stored with the listing's fields (those sent, or those of its last quote) for training
    (`valuation train --from-records`), and scored against that quote for live accuracy
    (`/metrics`)."""
    record = request.app.state.record
    try:
        last = await run_in_threadpool(record.last_quote, body.listing_id)
    except SQLAlchemyError:
        log.exception("sale of %r: the record cannot be read", body.listing_id)
        raise ServiceError(503, "record_unavailable", "the record cannot be read now") from None
    # The quote it is scored against: the last one, when it has an estimate to score.
    scored = last if last is not None and last["price_estimate"] is not None else None
    if body.listing is not None:
        listing = _listing(body.listing)
    elif last is not None:
        listing = Listing(**{name: last[name] for name in Listing.__slots__})
    else:
        why = f"no quote of listing {body.listing_id!r} is on record: send its fields"
        raise ServiceError(422, "unknown_listing", why, ({"field": "listing", "message": why},))
    sold_at = body.sold_at or records.now().date()
    await recording.record(
        request,
        records.sales,
        [
            {
                "request_id": request.scope["request_id"],
                "reported_at": records.now(),
                "listing_id": body.listing_id,
                "price": body.price,
                "sold_at": sold_at,
                **asdict(listing),
                "quote_id": scored and scored["id"],
                "model_version": scored and scored["model_version"],
                "price_estimate": scored and scored["price_estimate"],
            }
        ],
    )
    quoted = None
    if scored is not None:
        quoted = {
            "model": {"name": scored["model_name"], "version": scored["model_version"]},
            "price_estimate": scored["price_estimate"],
            "error_percent": abs(scored["price_estimate"] - body.price) / body.price * 100,
        }
    return {
        "listing_id": body.listing_id,
        "price": body.price,
        "sold_at": sold_at,
        "quoted": quoted,
    }


@router.get("/v1/model", response_model=schemas.ModelInfo, responses=ERRORS, tags=["model"])
def model(request: Request, valuer: CurrentValuer):
    """The model being served: version, training data, holdout metrics, known categories."""
    card = valuer.card
    return {
        "name": card.get("model_name"),
        "version": valuer.version,
        "alias": request.app.state.settings.model_alias,
        "trained_at": card.get("trained_at"),
        "data": {
            "rows": card.get("data_rows"),
            "training_rows": card.get("training_rows"),
            "sha256": card.get("data_sha256"),
            "holdout_split": card.get("split_by"),
        },
        "holdout_metrics": card.get("holdout_metrics", {}),
        "market_date": valuer.market_date,
        "interval": DEFAULT_LEVEL,
        "levels": [MIN_LEVEL, MAX_LEVEL],
        "categories": list(valuer.encoder.categories),
    }


@router.get(
    "/v1/market",
    response_model=schemas.CategoryIndexOut | schemas.MarketOut,
    responses={
        404: {
            "model": ErrorOut,
            "description": "No index: the model knows no dates, or the category is not in its "
            "data.",
        },
        422: ERRORS[422],
        503: ERRORS[503],
    },
    summary="Is a category going up or down?",
    tags=["model"],
)
def market(
    valuer: CurrentValuer,
    category: Annotated[
        str | None, Query(max_length=64, description="One category's monthly index.")
    ] = None,
):
    """Without `category`: every category's change over the last 3 and 12 months. With it: that
    category's price index month by month (the typical listing's price, with a 90% band of the
    index's own uncertainty), oldest first, up to the market date."""
    try:
        if category is not None:
            return asdict(category_index(valuer, category))
        index = market_of(valuer)
    except NoMarketIndex as error:
        raise ServiceError(404, "no_market_index", str(error)) from error
    ordered = sorted(index.sales.items(), key=lambda item: (-item[1], item[0]))
    return {
        "market_date": index.market_date,
        "categories": [
            {"category": name, "sales": sales, "changes": changes(index, name)}
            for name, sales in ordered
        ],
    }


@router.get("/healthz", tags=["operations"])
async def healthz():
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: ERRORS[503]}, tags=["operations"])
async def readyz(valuer: CurrentValuer):
    """A model is loaded and answers the smoke listings with sane prices."""
    problems = smoke_problems(valuer)
    if problems:
        raise ServiceError(503, "model_unhealthy", "; ".join(problems))
    return {"status": "ready", "model": _model_ref(valuer)}


@router.get("/metrics", tags=["operations"], response_class=Response)
def metrics(request: Request):
    """Prometheus exposition: requests and latency by endpoint and status, quotes, model loaded."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


def _count_quotes(request: Request, endpoint: str, count: int = 1) -> None:
    request.app.state.metrics.quotes.labels(endpoint).inc(count)
