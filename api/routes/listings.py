"""Listings: what the record holds of one listing, for the marketplace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from api import schemas
from api.auth import MarketplaceKey
from api.deps import RecordDep
from api.errors import ServiceError
from api.schemas import ErrorOut
from valuation.schema import MAX_LISTING_ID_LENGTH

router = APIRouter()


@router.get(
    "/v1/listings/{listing_id}",
    response_model=schemas.ListingHistory,
    responses={
        401: {"model": ErrorOut, "description": "No API key, or not an active one."},
        403: {"model": ErrorOut, "description": "The key's role is not marketplace or admin."},
        404: {"model": ErrorOut, "description": "Nothing of this listing is on record."},
    },
    summary="A listing's history: its quotes and its sale (a marketplace key)",
    tags=["sales"],
)
async def listing_history(
    listing_id: Annotated[str, Path(min_length=1, max_length=MAX_LISTING_ID_LENGTH)],
    record: RecordDep,
    key: MarketplaceKey,
):
    """Every quote of the listing on record (time, endpoint, model version, estimate and
    range), oldest first, and its latest reported sale."""
    found, sale = await run_in_threadpool(record.listing_history, listing_id)
    if not found and sale is None:
        raise ServiceError(404, "not_found", f"nothing of listing {listing_id!r} is on record")
    return {
        "listing_id": listing_id,
        "quotes": [
            {
                "served_at": row["served_at"],
                "endpoint": row["endpoint"],
                "model": {"name": row["model_name"], "version": row["model_version"]},
                "price_estimate": row["price_estimate"],
                "price_low": row["price_low"],
                "price_high": row["price_high"],
            }
            for row in found
        ],
        "sale": sale,
    }
