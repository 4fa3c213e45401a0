"""API keys: a name, a role, and the key's SHA-256 in the record's database (never the key).

A key is shown once, when it is made. Roles nest: `quote` may quote and appraise (where a
deployment asks for keys at all), `marketplace` may also report sales and read listings'
histories, `admin` may also reload models and manage keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from valuation.storage.records import api_keys, now

ROLES = ("quote", "marketplace", "admin")
PREFIX = "vk_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REFRESH_SECONDS = 5.0
"""How long the API trusts its copy of the keys: a key made or revoked counts within this."""


class KeyProblem(ValueError):
    """A key that cannot be made or revoked as asked."""


@dataclass(frozen=True)
class Key:
    name: str
    role: str
    created_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def allows(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def create(engine, name: str, role: str) -> str:
    """A new key of `role` named `name`; returns the key, which is stored only as its hash."""
    if role not in ROLES:
        raise KeyProblem(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not NAME.match(name):
        raise KeyProblem("a key's name is 1-64 letters, digits, '.', '_' or '-'")
    key = PREFIX + secrets.token_urlsafe(32)
    row = {"name": name, "role": role, "key_sha256": digest(key), "created_at": now()}
    try:
        with engine.begin() as connection:
            connection.execute(insert(api_keys).values(**row))
    except IntegrityError:
        raise KeyProblem(f"a key named {name!r} exists (revoked keys keep their names)") from None
    return key


def listed(engine) -> list[Key]:
    query = select(api_keys.c.name, api_keys.c.role, api_keys.c.created_at, api_keys.c.revoked_at)
    with engine.connect() as connection:
        return [Key(*row) for row in connection.execute(query.order_by(api_keys.c.id))]


def revoke(engine, name: str) -> None:
    with engine.begin() as connection:
        done = connection.execute(
            update(api_keys)
            .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now())
        )
    if done.rowcount == 0:
        raise KeyProblem(f"no key named {name!r} is active")


class Keys:
    """The active keys by hash, for the API: reread from the record at most every
    REFRESH_SECONDS, so a check costs a hash and a dictionary lookup."""

    def __init__(self, engine):
        self.engine = engine
        self._by_digest: dict[str, Key] = {}
        self._read_at = -float("inf")
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        query = select(api_keys.c.key_sha256, api_keys.c.name, api_keys.c.role).where(
            api_keys.c.revoked_at.is_(None)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        self._by_digest = {sha: Key(name, role) for sha, name, role in rows}
        self._read_at = time.monotonic()

    def find(self, key: str) -> Key | None:
        """The active key `key` is, or None. The stored hash is compared in constant time."""
        if time.monotonic() - self._read_at > REFRESH_SECONDS:
            with self._lock:
                if time.monotonic() - self._read_at > REFRESH_SECONDS:
                    self._refresh()
        given = digest(key)
        for stored, found in self._by_digest.items():
            if hmac.compare_digest(stored, given):
                return found
        return None
