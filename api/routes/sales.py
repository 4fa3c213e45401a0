"""Sales: the price a listing really sold for, reported by the marketplace."""

from __future__ import annotations

import logging
from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError

from api import recording, schemas
from api.answers import ERRORS, listing_of
from api.auth import MarketplaceKey
from api.deps import RecordDep, ServedDep
from api.errors import ServiceError
from api.schemas import ErrorOut
from valuation.listing import Listing
from valuation.screening import suspicion
from valuation.storage import records

log = logging.getLogger("api")
router = APIRouter()


@router.post(
    "/v1/sales",
    status_code=201,
    response_model=schemas.SaleOut,
    responses={
        **ERRORS,
        401: {"model": ErrorOut, "description": "No API key, or not an active one."},
        403: {"model": ErrorOut, "description": "The key's role is not marketplace or admin."},
    },
    summary="Report a sale: the price a listing really sold for (a marketplace key)",
    tags=["sales"],
)
async def sale(
    body: schemas.SaleIn,
    request: Request,
    record: RecordDep,
    key: MarketplaceKey,
    served: ServedDep,
):
    """Stored with the listing's fields (those sent, or those of its last quote) and the name of
    the key that reported it, for training (`valuation train --from-records`), and scored
    against that quote for live accuracy (`/metrics`). A sale far outside the listing's price
    distribution is stored as `suspect`: not trained on until an admin confirms it."""
    try:
        last = await run_in_threadpool(record.last_quote, body.listing_id)
    except SQLAlchemyError:
        log.exception("sale of %r: the record cannot be read", body.listing_id)
        raise ServiceError(503, "record_unavailable", "the record cannot be read now") from None
    # The quote it is scored against: the last one, when it has an estimate to score.
    scored = last if last is not None and last["price_estimate"] is not None else None
    if body.listing is not None:
        listing = listing_of(body.listing)
    elif last is not None:
        listing = Listing(**{name: last[name] for name in Listing.__slots__})
    else:
        why = f"no quote of listing {body.listing_id!r} is on record: send its fields"
        raise ServiceError(422, "unknown_listing", why, ({"field": "listing", "message": why},))
    sold_at = body.sold_at or records.now().date()
    because = suspicion(served, listing, body.price) if served is not None else None
    status = records.SUSPECT if because else records.ACCEPTED
    await recording.record(
        record,
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
                "reported_by": key.name,
                "status": status,
            }
        ],
    )
    if because:
        log.warning("sale of %r stored as suspect: %s", body.listing_id, because)
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
        "status": status,
        "suspect_because": because,
    }
