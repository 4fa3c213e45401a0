"""Who is calling: `Authorization: Bearer <key>`, checked against the record's API keys
(valuation/storage/keys.py). A missing or unknown key is a 401 with `WWW-Authenticate`, a key
whose role is not enough a 403. `VALUATION_ADMIN_TOKEN`, where set, still counts as an admin
key (named `admin-token`): a way in before the first admin key exists."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from api.errors import ServiceError
from valuation.storage.keys import Key, allows

log = logging.getLogger("api")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="A key from `valuation keys create --role quote|marketplace|admin`.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def caller(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Key | None:
    """The key presented, or None when none is or it is not an active key."""
    if credentials is None:
        return None
    given = credentials.credentials
    token = request.app.state.settings.admin_token
    secret = token.get_secret_value() if token else ""
    # Digests of equal length, compared in constant time: neither the token's bytes nor its
    # length can be timed out of the answers.
    if secret and hmac.compare_digest(_sha256(given), _sha256(secret)):
        return Key("admin-token", "admin")
    try:
        return request.app.state.keys.find(given)
    except SQLAlchemyError:
        log.exception("the keys cannot be read from the record")
        raise ServiceError(503, "record_unavailable", "the record cannot be read now") from None


def need(role: str):
    """A dependency: the caller's key, which must have `role` (or a role that includes it)."""

    async def key_with_role(request: Request, credentials: Credentials) -> Key:
        key = caller(request, credentials)
        if key is None:
            log.warning(
                "refused %s %s: %s key",
                request.method,
                request.url.path,
                "no" if credentials is None else "an unknown",
            )
            raise ServiceError(
                401,
                "unauthorized",
                f"this needs an API key with the role {role}: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not allows(key.role, role):
            raise ServiceError(
                403, "forbidden", f"the key {key.name!r} has the role {key.role}; this needs {role}"
            )
        return key

    key_with_role.__name__ = f"needs_{role}"
    return key_with_role


QuoteKey = Annotated[Key, Depends(need("quote"))]
MarketplaceKey = Annotated[Key, Depends(need("marketplace"))]
AdminKey = Annotated[Key, Depends(need("admin"))]
