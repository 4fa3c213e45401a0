"""Limits: a body over `Settings.max_body_bytes` is answered 413 before it is read; public
quoting is rate-limited per key and per client address (429 with Retry-After).

A plain ASGI middleware, like `api.metrics`: a request that declares its length costs one scan of
its headers and nothing else; only a body without Content-Length (chunked) has its reads counted.
"""

from __future__ import annotations

import math
import time

from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from api.errors import error_response
from valuation.infra.settings import Settings, get_settings

# Content-Length has no sign, spaces or other digits than ASCII ones (RFC 9110 8.6): anything
# else is refused rather than guessed. Past this many digits it is over any limit we could set.
_MAX_DIGITS = 18


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a chunked body streams past the limit. An HTTPException, so that
    FastAPI lets it through its body reading and the app's handler answers it in the error shape."""

    def __init__(self, limit: int):
        message = f"the request body is over the limit of {limit:,} bytes"
        super().__init__(413, message, headers={"connection": "close"})


class BodyLimitMiddleware:
    def __init__(self, app, settings: Settings | None = None):
        self.app = app
        self._settings = settings
        self._limit: int | None = None
        self._digits = 0

    @property
    def limit(self) -> int:
        # Read on the first request, not at app creation: settings are read lazily (no env read
        # when `api.main` is imported).
        if self._limit is None:
            self._limit = (self._settings or get_settings()).max_body_bytes
            self._digits = len(str(self._limit))
        return self._limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self._limit or self.limit
        declared = None
        for name, value in scope["headers"]:  # ASGI header names are lower case
            if name == b"content-length":
                if declared is not None and value != declared:
                    return await _refuse(scope, receive, send, 400, "Content-Length is repeated")
                declared = value
        if declared is None:
            return await self._counted(scope, receive, send, limit)
        if not declared.isdigit():  # bytes.isdigit: ASCII digits only, no sign, no spaces
            shown = declared[:40].decode("latin-1")
            message = f"Content-Length is not a number: {shown!r}"
            return await _refuse(scope, receive, send, 400, message)
        if len(declared) >= self._digits:  # fewer digits than the limit: within it, no int()
            if len(declared) > _MAX_DIGITS:
                declared = declared.lstrip(b"0") or b"0"  # 000...0012 is still 12 bytes
            if len(declared) > _MAX_DIGITS or int(declared) > limit:
                size = f"{int(declared):,}" if len(declared) <= _MAX_DIGITS else "over 10^18"
                message = f"the request body of {size} bytes is over the limit of {limit:,} bytes"
                return await _refuse(scope, receive, send, 413, message)
        return await self.app(scope, receive, send)

    async def _counted(self, scope, receive, send, limit: int):
        """A body of unknown length (chunked): counted as it is read, refused once past `limit`."""
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as error:
            # Normally answered inside the app by its HTTPException handler; this is for a reader
            # outside that handler's reach. Once a response has started it can only be cut off.
            if started:
                raise
            await _refuse(scope, receive, send, 413, error.detail)


_CODES: dict[int, str] = {400: "bad_request", 413: "too_large"}


async def _refuse(scope, receive, send, status: int, message: str) -> None:
    response = error_response(status, _CODES[status], message)
    # The unread body stays on the connection: ask the client to open a fresh one.
    response.headers["connection"] = "close"
    await response(scope, receive, send)


class Buckets:
    """Token buckets, one per caller: `rate` requests a second, up to `burst` at once. In this
    process's memory (each worker of `serve --workers N` limits on its own); callers idle long
    enough to be full again are forgotten, so memory stays bounded by the active ones."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)
        self._swept = 0.0

    def take(self, caller: str, now: float) -> float:
        """0 when the request may go; else the seconds until it could."""
        tokens, at = self._buckets.get(caller, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[caller] = (tokens - 1.0, now)
        if now - self._swept > self.burst / self.rate:
            self._sweep(now)
        return 0.0

    def _sweep(self, now: float) -> None:
        full = self.burst / self.rate
        self._buckets = {c: (t, at) for c, (t, at) in self._buckets.items() if now - at < full}
        self._swept = now


def _key_of(scope):
    """The active API key a request carries, or None."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, given = value.decode("latin-1").partition(" ")
            keys = getattr(scope["app"].state, "keys", None) if "app" in scope else None
            if scheme.lower() != "bearer" or not given or keys is None:
                return None
            try:
                return keys.find(given.strip())
            except SQLAlchemyError:
                return None  # counted by address; the route itself answers 503
    return None


class RateLimitMiddleware:
    """Limits on public quoting (`paths`): per API key when the request carries an active one,
    else per client address (X-Forwarded-For is not trusted: behind a proxy, limit there). In a
    private deployment (`Settings.quotes_need_key`) a request without an active key is a 401. Over the limit: 429 in the
    error shape, with `Retry-After`. `Settings.quote_rate` 0 turns it off."""

    def __init__(self, app, paths: frozenset[str], settings: Settings | None = None):
        self.app = app
        self.paths = paths
        self._settings = settings
        self._limits: tuple[Buckets, Buckets] | None = None
        self._private = False

    def _buckets(self) -> tuple[Buckets, Buckets] | None:
        if self._limits is None:  # read on the first request: settings are read lazily
            settings = self._settings or get_settings()
            self._private = settings.quotes_need_key
            if settings.quote_rate <= 0:
                self._limits = ()
            else:
                self._limits = (
                    Buckets(settings.quote_rate, settings.quote_burst),
                    Buckets(settings.key_quote_rate, settings.key_quote_burst),
                )
        return self._limits or None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        limits = self._buckets()
        if limits is None and not self._private:
            return await self.app(scope, receive, send)
        key = _key_of(scope)
        if key is None and self._private:
            response = error_response(
                401,
                "unauthorized",
                "this deployment quotes for API keys only: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
            return await response(scope, receive, send)
        if limits is None:
            return await self.app(scope, receive, send)
        by_address, by_key = limits
        if key is not None:
            buckets, caller = by_key, key.name
        else:  # no key, or not an active one (made-up keys do not buy a bucket each)
            client = scope.get("client")
            buckets, caller = by_address, client[0] if client else "unknown"
        wait = buckets.take(caller, time.monotonic())
        if not wait:
            return await self.app(scope, receive, send)
        seconds = max(1, math.ceil(wait))
        response = error_response(
            429,
            "too_many_requests",
            f"over the limit of {buckets.rate:g} quotes a second (bursts of {buckets.burst:g}): "
            f"retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
        await response(scope, receive, send)
