"""Prometheus metrics: requests and latency by endpoint and status, quotes served, model loaded.

A plain ASGI middleware (not BaseHTTPMiddleware, which costs a task per request), labelled by the
route template so that /nope/123 does not become a series of its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import BaseRoute, Match

from valuation.monitoring import live_accuracy, stability

log = logging.getLogger("api")

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "valuation_requests_total",
            "HTTP requests.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "valuation_request_seconds",
            "HTTP request latency.",
            ["endpoint", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.quotes = Counter(
            "valuation_quotes_total", "Listings valued.", ["endpoint"], registry=self.registry
        )
        self.model = Gauge(
            "valuation_model_info",
            "The model being served (1 = loaded).",
            ["name", "version"],
            registry=self.registry,
        )
        self.market_date = Gauge(
            "valuation_market_date_timestamp_seconds",
            "The served model's market date (its latest training sale; quotes value listings as "
            "of it), as Unix time at midnight UTC; 0 for a model trained without dates.",
            registry=self.registry,
        )

    def serving(self, valuer, name: str, old=None) -> None:
        """The served model on the gauges: its name and version, and its market date."""
        if old is not None:
            with suppress(KeyError):  # not every served model was on the gauge
                self.model.remove(old.name or name, str(old.version))
        self.model.labels(valuer.name or name, str(valuer.version)).set(1)
        day = valuer.market_date
        stamp = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() if day else 0
        self.market_date.set(stamp)


class LiveFigures:
    """Read from the record at scrape time: live accuracy by model version, and input drift of
    the served model (whose bundle carries its training data's profile)."""

    def __init__(self, state):
        self.state = state

    def describe(self):
        return []  # computed at scrape time only: registering must not query the record

    def collect(self):
        record = getattr(self.state, "record", None)
        if record is None:
            return
        try:
            yield from self._figures(record)
        except SQLAlchemyError:  # the request metrics must not go down with the record
            log.exception("live figures skipped: the record cannot be read")

    def _figures(self, record):
        settings = self.state.settings
        mdape = GaugeMetricFamily(
            "valuation_live_mdape_percent",
            f"Median absolute percentage error of the last {settings.live_window} reported sales, "
            "by the model version that quoted them.",
            labels=["version"],
        )
        count = GaugeMetricFamily(
            "valuation_live_sales",
            "Reported sales scored in valuation_live_mdape_percent.",
            labels=["version"],
        )
        for version, (error, n) in live_accuracy(record.recent_sales(settings.live_window)).items():
            mdape.add_metric([str(version)], error)
            count.add_metric([str(version)], n)
        yield mdape
        yield count
        by_status = GaugeMetricFamily(
            "valuation_sales_on_record",
            "Reported sales on record by status: suspect ones wait for an admin's decision and "
            "are not trained on.",
            labels=["status"],
        )
        for status, n in record.sales_by_status().items():
            by_status.add_metric([status], n)
        yield by_status
        valuer = self.state.valuer
        reference = valuer.card.profile if valuer is not None else None
        recent = record.recent_listings(settings.drift_window) if reference else None
        if recent is not None and len(recent):
            drift = GaugeMetricFamily(
                "valuation_input_psi",
                f"Population stability index of each feature, the last {settings.drift_window} "
                "listings quoted against the served model's training data (>0.25: shifted).",
                labels=["feature"],
            )
            for feature, value in stability(reference, recent).items():
                drift.add_metric([feature], value)
            yield drift


class MetricsMiddleware:
    """`routes`: the app's routes, to name a request answered before routing (a body over the
    limit) by the route it was sent to rather than as unmatched."""

    def __init__(self, app, metrics: Metrics, routes: Sequence[BaseRoute] = ()):
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            endpoint = _endpoint(scope, self.routes)
            method = scope["method"]
            self.metrics.requests.labels(endpoint, method, str(status)).inc()
            seconds = time.perf_counter() - started
            self.metrics.latency.labels(endpoint, method, str(status)).observe(seconds)


def _endpoint(scope, routes: Sequence[BaseRoute]) -> str:
    """The route template that served the request, or that a request answered before routing
    was sent to (looked up only then: 413s and 404s are rare); "unmatched" when none takes it."""
    route = scope.get("route")
    if route is None:
        route = next((r for r in routes if r.matches(scope)[0] == Match.FULL), None)
    return getattr(route, "path", None) or "unmatched"
