"""Operator endpoints, behind a bearer token: `POST /admin/reload` serves the registry's champion
(or a named version) without a restart (api/model_updates.py does the swap)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from api.deps import ModelUpdatesDep, SettingsDep
from api.errors import ServiceError
from api.schemas import ErrorOut, ReloadOut

log = logging.getLogger("api")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="The token in the server's `VALUATION_ADMIN_TOKEN`.",
)


async def require_admin(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    token = settings.admin_token
    secret = token.get_secret_value() if token else ""
    if not secret:
        raise HTTPException(404)  # off: answered exactly as a path that does not exist
    given = credentials.credentials if credentials else ""
    # Digests of equal length, compared in constant time: neither the token's bytes nor its
    # length can be timed out of the answers.
    if not hmac.compare_digest(_sha256(given), _sha256(secret)):
        log.warning("admin request refused: bad or missing token from %s", _client(request))
        raise ServiceError(
            401,
            "unauthorized",
            "this endpoint needs the admin token: Authorization: Bearer <VALUATION_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
REFUSALS = {
    401: {"model": ErrorOut, "description": "The admin token is missing or wrong."},
    404: {"model": ErrorOut, "description": "Admin endpoints are off (no token configured)."},
    409: {
        "model": ErrorOut,
        "description": "The model was refused (not registered, bundle not the one registered, "
        "failed to load or failed the smoke check); the one being served keeps serving.",
    },
}


@router.post("/reload", response_model=ReloadOut, responses=REFUSALS, summary="Reload the model")
async def reload(
    request: Request,
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
    return await updates.reload(version, f"admin {_client(request)}")


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"
