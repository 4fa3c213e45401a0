"""What a route needs from the running app, as typed dependencies: routes never read `app.state`.

Each is `async def`: a plain `def` dependency would cost every request a hop to the thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.errors import ServiceError
from api.metrics import Metrics
from api.model_updates import ModelUpdates
from valuation.infra.settings import Settings
from valuation.storage.records import Record
from valuation.valuer import Valuer


async def app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def current_valuer(request: Request) -> Valuer:
    """The model being served; 503 `no_model` while there is none."""
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


async def served_valuer(request: Request) -> Valuer | None:
    """The model being served, or None while there is none (for routes that work without)."""
    return request.app.state.valuer


@dataclass(frozen=True, slots=True)
class Quoting:
    """What a quoting route needs, in one dependency (each dependency costs a request a few
    microseconds of FastAPI's resolution): the model being served, the record, the metrics."""

    valuer: Valuer
    record: Record
    metrics: Metrics


async def quoting(request: Request) -> Quoting:
    """503 `no_model` while no model is loaded, as `current_valuer`."""
    state = request.app.state
    return Quoting(await current_valuer(request), state.record, state.metrics)


async def the_record(request: Request) -> Record:
    """Where quotes and sales are put on record."""
    return request.app.state.record


async def app_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def model_updates_of(request: Request) -> ModelUpdates:
    """The app's model updates (reloads), for the admin route."""
    return request.app.state.model_updates


SettingsDep = Annotated[Settings, Depends(app_settings)]
ValuerDep = Annotated[Valuer, Depends(current_valuer)]
ServedDep = Annotated[Valuer | None, Depends(served_valuer)]
RecordDep = Annotated[Record, Depends(the_record)]
MetricsDep = Annotated[Metrics, Depends(app_metrics)]
QuotingDep = Annotated[Quoting, Depends(quoting)]
ModelUpdatesDep = Annotated[ModelUpdates, Depends(model_updates_of)]
