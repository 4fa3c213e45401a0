"""Every answer on record: a request id per request (returned as `X-Request-ID`), and the rows a
quote, a batch or an appraisal writes before it may answer 200."""

from __future__ import annotations

import json
import time
from random import getrandbits

from fastapi import Request, Response
from sqlalchemy import Table

from api.deps import Quoting
from api.errors import ServiceError
from valuation.listing import Listing
from valuation.storage.records import Record, RecordUnavailable, now
from valuation.storage.records import quotes as quotes_table

HEADER = b"x-request-id"


class RequestIds:
    """Pure ASGI: a fresh id in `scope["request_id"]` and in the answer's headers."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # Time first, then 64 random bits: ids sort by time, and the record's index on them grows
        # at its end instead of at random pages (a third cheaper commit, measured).
        # Unique, not secret: the process's own generator (no system call) is enough.
        request_id = scope["request_id"] = f"{time.time_ns():016x}{getrandbits(64):016x}"

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


def quote_row(
    request: Request,
    endpoint: str,
    item: int,
    listing: Listing,
    sent: str,
    quote: dict,
    answer: dict | None = None,
) -> dict:
    """`quote` is the listing's quote; `answer` the whole answer when it is more (an appraisal)."""
    model = quote["model"]
    return {
        "request_id": request.scope["request_id"],
        "item": item,
        "endpoint": endpoint,
        "served_at": now(),
        "listing_id": quote["listing_id"],
        **{name: getattr(listing, name) for name in Listing.__slots__},
        "model_name": model["name"],
        "model_version": model["version"],
        "price_estimate": quote["price_estimate"],
        "request": sent,
        "answer": as_text(answer or quote),
        # Straight from the scope: `request.url` would build the whole URL for its query.
        "query": request.scope["query_string"].decode("utf-8", "replace") or None,
    }


# Built once: `json.dumps` with any option builds an encoder per call, two fifths of its cost here.
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def as_text(value) -> str:
    """JSON as the database can store it: Chinese kept readable, a lone surrogate (valid in a JSON
    escape, not in UTF-8) written as its escape instead of failing the commit."""
    return _ENCODE(value).encode("utf-8", "backslashreplace").decode("utf-8")


def as_given(row: dict) -> Response:
    """The recorded answer is the answer: its JSON goes out as stored (it matches the route's
    response model, which the fuzz test checks), sparing a second serialisation."""
    return Response(row["answer"].encode("utf-8"), media_type="application/json")


def batch_answer(head: dict, results: list[str]) -> Response:
    """A batch's answer: `head`'s fields, then `results`, the JSON of each listing's entry (the
    recorded answer of each one valued) in order. Put together from those texts, not serialised
    again (for 10,000 listings, validating and dumping them once more cost 0.3 s)."""
    text = f'{as_text(head)[:-1]},"results":[{",".join(results)}]}}'
    return Response(text.encode("utf-8"), media_type="application/json")


async def sent_body(request: Request) -> str:
    """The body as the client sent it (FastAPI has read it already; this is its cached copy)."""
    return (await request.body()).decode("utf-8", errors="replace")


async def record(on: Record, table: Table, rows: list[dict]) -> None:
    """Returns once `rows` are committed; a failed commit answers 503, never a 200."""
    try:
        await on.write(table, rows)
    except RecordUnavailable as error:
        raise ServiceError(
            503, "record_unavailable", f"{error}; the answer was not given"
        ) from None


async def answer_one(
    request: Request, quoting: Quoting, endpoint: str, listing: Listing, quote: dict, answer=None
) -> Response:
    """One listing's answer (a quote, or the whole `answer` that holds it) put on record, its
    commit awaited, counted in the metrics, and sent as stored."""
    sent = await sent_body(request)
    row = quote_row(request, endpoint, 0, listing, sent, quote, answer)
    await record(quoting.record, quotes_table, [row])
    quoting.metrics.quotes.labels(endpoint).inc()
    return as_given(row)


async def answer_batch(quoting: Quoting, endpoint: str, head: dict, results: list[str], rows):
    """A batch's answer (`batch_answer`): the rows of the listings valued put on record, their
    commit awaited, counted in the metrics."""
    if rows:
        await record(quoting.record, quotes_table, rows)
    quoting.metrics.quotes.labels(endpoint).inc(len(rows))
    return batch_answer(head, results)
