"""The prediction API: the app factory, its lifespan (which loads the champion) and its wiring."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, pages, routes
from api.limits import BodyLimitMiddleware, RateLimitMiddleware
from api.metrics import LiveFigures, Metrics, MetricsMiddleware
from api.model_updates import model_updates
from api.quick import QuickQuotes
from api.recording import RequestIds
from valuation.infra.settings import Settings, get_settings
from valuation.schema import FEATURES
from valuation.storage.keys import Keys
from valuation.storage.records import Record
from valuation.valuer import Valuer

log = logging.getLogger("api")

DESCRIPTION = f"""Sale-price valuation of Kuaishou (快手) accounts, for sellers, brokers and marketplaces.

Listings use the canonical field names ({", ".join(f"`{f.name}`" for f in FEATURES)}); values may
be typed (`131300`, `true`) or spelled as marketplaces write them
(`"13.13W"`, `"有违规"`, `"已开通"`). Every error has one shape:
`{{"error": {{"code", "message", "fields": [{{"field", "message"}}]}}}}`.
"""


def create_app(settings: Settings | None = None, valuer: Valuer | None = None) -> FastAPI:
    """`valuer` given: serve it (tests); otherwise the lifespan loads the registry's champion."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings or get_settings()
        app.state.valuer = valuer or _load_champion(app.state.settings)
        if app.state.valuer is not None:
            app.state.metrics.serving(app.state.valuer, app.state.settings.model_name)
        app.state.record = Record(app.state.settings.records, app.state.settings.record_timeout)
        app.state.keys = Keys(app.state.record.engine)
        try:
            async with model_updates(app):  # reloads, and polling when configured
                yield
        finally:
            await app.state.record.aclose()  # commits what is waiting

    app = FastAPI(
        title="Kuaishou account valuation",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # OpenTelemetry is not configured here (/metrics is Prometheus): without this, FastAPI
        # looks its providers up again on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.metrics = Metrics()
    app.state.metrics.registry.register(LiveFigures(app.state))
    app.state.valuer = None
    errors.install(app)
    routers = (*routes.ROUTERS, pages.router)
    for router in routers:
        app.include_router(router)  # without a prefix: each route's path is the one served
    # Innermost: a plain quote skips FastAPI's routing, behind every limit and count below.
    app.add_middleware(QuickQuotes, routes=[route for router in routers for route in router.routes])
    # Added before the metrics, so they run inside them: refused requests are counted too.
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    quoting = frozenset(route.path for router in routes.QUOTING for route in router.routes)
    app.add_middleware(RateLimitMiddleware, paths=quoting, settings=settings)
    app.add_middleware(
        MetricsMiddleware,
        metrics=app.state.metrics,
        routes=[route for router in routers for route in router.routes],
    )
    app.add_middleware(RequestIds)
    return app


def _load_champion(settings: Settings) -> Valuer | None:
    from valuation.storage.bundles import BundleRejected
    from valuation.storage.registry import NoModel, load_valuer

    try:
        valuer = load_valuer(settings)
    except NoModel as error:
        log.warning("serving without a model: %s", error)
        return None
    except BundleRejected as error:
        # Not ready (503) rather than not running: a good model can be reloaded without a restart.
        log.error("serving without a model: %s", error)
        return None
    log.info("serving %s version %s", settings.model_name, valuer.version)
    return valuer


app = create_app()
