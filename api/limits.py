"""The request body limit: a body over `Settings.max_body_bytes` is answered 413 before it is read.

A plain ASGI middleware, like `api.metrics`: a request that declares its length costs one scan of
its headers and nothing else; only a body without Content-Length (chunked) has its reads counted.
"""

from __future__ import annotations

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
