"""The quote path without FastAPI's machinery: a plain `POST /v1/quote` answered in pure ASGI.

The marketplace calls `/v1/quote` at listing time, thousands of times a second; FastAPI's routing,
dependency resolution and request objects cost a request more than the valuation itself. This
middleware, innermost (behind the request ids, the metrics, the limits and the body limit, which
apply as to any request), answers the common case itself: a `POST /v1/quote` without query
options, with a JSON listing the route's own model (`schemas.ListingIn`) accepts, while a model is
loaded. The answer is the route's: the same `full_quote`, the same row on record (committed before
the answer, a 503 when it cannot be), the same counter, the same bytes.

Anything else (query options, another content type, a body the model refuses, no model) goes on
to the FastAPI route with the body as received, which answers it (and its errors) as documented in
the OpenAPI schema: this path never has an answer of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import SimpleNamespace

from pydantic import ValidationError
from starlette.routing import BaseRoute

from api import recording, schemas
from api.answers import listing_of
from api.errors import ServiceError, error_response
from valuation.listing import ListingError
from valuation.quoting import full_quote
from valuation.storage.records import quotes as quotes_table
from valuation.valuer import DEFAULT_LEVEL

PATH = "/v1/quote"
ENDPOINT = "quote"
_JSON = (b"application/json", b"application/json; charset=utf-8")


class QuickQuotes:
    """`routes`: the app's routes, among them the one this path stands for (named in the
    metrics as the route that served the request)."""

    def __init__(self, app, routes: Sequence[BaseRoute]):
        self.app = app
        self.route = next(
            route
            for route in routes
            if getattr(route, "path", None) == PATH and "POST" in getattr(route, "methods", ())
        )

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope["query_string"]
            or _content_type(scope) not in _JSON
        ):
            return await self.app(scope, receive, send)
        body = await _read(receive)
        if body is None:
            return None  # the client went away
        state = scope["app"].state
        valuer = state.valuer  # read once: a reload may swap it meanwhile
        listing_in = _listing(body) if valuer is not None else None
        if listing_in is None:
            return await self.app(scope, _replay(body, receive), send)
        try:
            listed = listing_of(listing_in)
        except ListingError:
            return await self.app(scope, _replay(body, receive), send)
        scope["route"] = self.route
        _, quote = full_quote(
            valuer, listed, listing_in.listing_id, DEFAULT_LEVEL, False, 0, None, False
        )
        sent = body.decode("utf-8", errors="replace")
        row = recording.quote_row(SimpleNamespace(scope=scope), ENDPOINT, 0, listed, sent, quote)
        try:
            await recording.record(state.record, quotes_table, [row])
        except ServiceError as error:
            answer = error_response(error.status, error.code, error.message, error.fields)
            return await answer(scope, receive, send)
        state.metrics.quotes.labels(ENDPOINT).inc()
        text = row["answer"].encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(text)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": text})
        return None


def _content_type(scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.lower()
    return None


async def _read(receive) -> bytes | None:
    """The whole body; None when the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _listing(body: bytes):
    """The body as the route's model reads it (JSON first, as FastAPI does), or None."""
    try:
        return schemas.ListingIn.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError):
        return None


def _replay(body: bytes, receive):
    """A `receive` that gives the body already read, then whatever the client sends next."""
    given = False

    async def replay():
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
