"""The model being served and the market it knows."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from api import schemas
from api.answers import ERRORS
from api.deps import SettingsDep, ValuerDep
from api.errors import ServiceError
from api.schemas import ErrorOut
from valuation.trends import NoMarketIndex, category_index, changes, market_of
from valuation.valuer import DEFAULT_LEVEL, MAX_LEVEL, MIN_LEVEL

router = APIRouter()


@router.get("/v1/model", response_model=schemas.ModelInfo, responses=ERRORS, tags=["model"])
def model(valuer: ValuerDep, settings: SettingsDep):
    """The model being served: version, training data, holdout metrics, known categories."""
    card = valuer.card
    return {
        "name": valuer.name,
        "version": valuer.version,
        "alias": settings.model_alias,
        "trained_at": card.trained_at,
        "data": {
            "rows": card.data_rows,
            "training_rows": card.training_rows,
            "sha256": card.data_sha256,
            "holdout_split": card.split_by,
        },
        "holdout_metrics": card.holdout_metrics,
        "holdout_by": card.holdout_by,
        "market_date": valuer.market_date,
        "interval": DEFAULT_LEVEL,
        "levels": [MIN_LEVEL, MAX_LEVEL],
        "categories": list(valuer.encoder.categories),
        "promotion": valuer.promotion,
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
    valuer: ValuerDep,
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
