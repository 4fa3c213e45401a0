"""One error shape everywhere: {"error": {"code", "message", "fields": [{"field", "message"}]}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

log = logging.getLogger("api")

_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    503: "no_model",
}


class ServiceError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: tuple[dict, ...] = (),
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields
        self.headers = headers  # e.g. WWW-Authenticate on a 401


def error_response(status: int, code: str, message: str, fields=(), headers=None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "fields": list(fields)}}
    return JSONResponse(body, status_code=status, headers=headers)


def field_problems(errors, drop: int = 0) -> list[dict[str, str]]:
    """pydantic's errors -> [{"field": "listing.fans", "message": "..."}], the reason first."""
    problems = []
    for error in errors:
        # A body that is not JSON at all is located by character offset: name the body instead.
        location = [] if error["type"] == "json_invalid" else [str(p) for p in error["loc"][drop:]]
        message = error["msg"].removeprefix("Value error, ")
        problems.append({"field": ".".join(location) or "body", "message": message})
    return problems


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        problems = field_problems(error.errors(), drop=1)  # drop the leading "body"
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return error_response(422, "invalid_request", summary, problems)

    @app.exception_handler(ValidationError)
    async def invalid_value(request: Request, error: ValidationError):
        problems = field_problems(error.errors())
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return error_response(422, "invalid_request", summary, problems)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        if isinstance(error.__cause__, UnicodeDecodeError):
            # FastAPI's 400 "error parsing the body": answered as any other body that is not JSON.
            why = f"JSON must be UTF-8 text ({error.__cause__.reason})"
            return error_response(
                422, "invalid_request", f"body: {why}", [{"field": "body", "message": why}]
            )
        code = _CODES.get(error.status_code, "http_error")
        # Starlette's own headers go on: a 405 must say which methods are allowed (RFC 9110).
        return error_response(error.status_code, code, str(error.detail), headers=error.headers)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError):
        return error_response(error.status, error.code, error.message, error.fields, error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        # Starlette answers a 500 outside every middleware: the request id is added here.
        request_id = request.scope.get("request_id", "")
        log.exception(
            "unexpected error on %s %s (request %s)", request.method, request.url.path, request_id
        )
        answer = error_response(500, "internal_error", "the service failed; it has been logged")
        if request_id:
            answer.headers["x-request-id"] = request_id
        return answer
