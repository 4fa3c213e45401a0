"""Operator endpoints, behind an admin key: `POST /admin/reload` serves the registry's champion
(or a named version) without a restart (api/model_updates.py does the swap); the reported sales
screened as suspect are listed, confirmed or rejected."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool

from api import schemas
from api.auth import AdminKey, need
from api.deps import ModelUpdatesDep, RecordDep
from api.errors import ServiceError
from api.schemas import ErrorOut, ReloadOut
from valuation.storage import records

log = logging.getLogger("api")

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(need("admin"))])
REFUSALS = {
    401: {"model": ErrorOut, "description": "No API key, or not an active one."},
    403: {"model": ErrorOut, "description": "The key's role is not admin."},
}


@router.post(
    "/reload",
    response_model=ReloadOut,
    responses={
        **REFUSALS,
        409: {
            "model": ErrorOut,
            "description": "The model was refused (not registered, bundle not the one "
            "registered, failed to load or failed the smoke check); the one being served keeps "
            "serving.",
        },
    },
    summary="Reload the model",
)
async def reload(
    key: AdminKey,
    updates: ModelUpdatesDep,
    version: Annotated[
        str | None,
        Query(
            pattern=r"^[1-9][0-9]{0,11}$",
            description="A registered version to serve (default: the one behind the alias).",
        ),
    ] = None,
):
    """Serves `<model_name>@<model_alias>` (or `version`) from now on, once it has loaded, matched
    its registered checksum and passed the smoke check. Requests under way finish on the model
    they started with."""
    return await updates.reload(version, f"admin key {key.name}")


@router.get(
    "/sales/suspect",
    response_model=list[schemas.SuspectSale],
    responses=REFUSALS,
    summary="Sales screened as suspect",
)
async def suspect_sales(record: RecordDep):
    """Reported sales far outside their listing's price distribution, kept out of training until
    confirmed, oldest first."""
    return await run_in_threadpool(record.suspect_sales)


@router.post(
    "/sales/{sale_id}/{decision}",
    response_model=schemas.SuspectSale,
    responses={**REFUSALS, 404: {"model": ErrorOut, "description": "No such suspect sale."}},
    summary="Confirm or reject a suspect sale",
)
async def decide(
    sale_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    decision: Literal["confirm", "reject"],
    record: RecordDep,
    key: AdminKey,
):
    """`confirm`: trained on from now on; `reject`: never trained on (kept on record)."""
    status = records.CONFIRMED if decision == "confirm" else records.REJECTED
    sale = await run_in_threadpool(record.decide_sale, sale_id, status)
    if sale is None:
        raise ServiceError(404, "not_found", f"no suspect sale {sale_id} is on record")
    log.info("sale %s %sed by admin key %s", sale_id, decision, key.name)
    return sale
