"""Model updates without a restart: a reload serves the registry's champion (or a named version),
and optional polling does the same when the champion moves. A model is swapped in only once it has
loaded from a bundle that matches its registered checksum and passed the smoke check; otherwise
the model being served keeps serving. The admin route (api/routes/admin.py) asks for reloads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from api.errors import ServiceError
from api.schemas import ReloadOut
from valuation.smoke import smoke_problems
from valuation.storage import registry
from valuation.storage.bundles import BundleRejected
from valuation.valuer import Valuer

log = logging.getLogger("api")


class Refused(ServiceError):
    def __init__(self, code: str, message: str, version: str | None = None):
        super().__init__(409, code, message)
        self.version = version


class ModelUpdates:
    """Swaps one app's model, one reload at a time, and polls the registry when asked to."""

    def __init__(self, app: FastAPI):
        self.app = app
        self.lock = asyncio.Lock()
        self.refused: set[str] = set()
        """Versions refused and not served since (for operators and tests to inspect)."""

    async def reload(self, version: str | None, by: str) -> ReloadOut:
        settings = self.app.state.settings
        async with self.lock:
            served = self.app.state.valuer
            previous = None if served is None else str(served.version)
            try:
                # Reading the registry, checking and parsing the bundle is blocking work: off the
                # event loop, so quotes keep being answered meanwhile.
                target, candidate = await asyncio.to_thread(self._prepare, version, previous)
            except Refused as refusal:
                if refusal.version:
                    self.refused.add(refusal.version)
                log.warning("reload by %s refused: %s", by, refusal.message)
                raise
            if candidate is not None:
                # The swap is this one assignment: a request reads app.state.valuer once, so one
                # under way finishes on the old model and the next gets the new one.
                self.app.state.valuer = candidate
                self._gauge(served, candidate)
                self.refused.discard(target)
                log.info(
                    "reload by %s: serving %s version %s (was %s)",
                    by,
                    settings.model_name,
                    target,
                    previous,
                )
            return ReloadOut(
                name=settings.model_name,
                previous_version=previous,
                version=target,
                changed=candidate is not None,
            )

    def _prepare(self, version: str | None, served: str | None) -> tuple[str, Valuer | None]:
        """The version to serve and its checked valuer (None when it is already served)."""
        settings = self.app.state.settings
        target = version or registry.registered_version(settings)
        if target is None:
            raise Refused(
                "no_model",
                f"nothing is registered as {settings.model_name}@{settings.model_alias}",
            )
        if target == served:
            return target, None
        what = f"{settings.model_name} version {target}"
        try:
            candidate = registry.load_valuer(settings, version=target)
        except registry.NoModel as error:
            raise Refused("no_model", str(error)) from None
        except BundleRejected as error:
            raise Refused("bundle_rejected", str(error), target) from None
        except Exception as error:  # whatever stops it loading, the served model stays
            log.exception("%s failed to load", what)
            raise Refused(
                "load_failed", f"{what} failed to load: {type(error).__name__}: {error}", target
            ) from None
        problems = smoke_problems(candidate)
        if problems:
            raise Refused(
                "smoke_failed", f"{what} failed the smoke check: {'; '.join(problems)}", target
            )
        return target, candidate

    def _gauge(self, old: Valuer | None, new: Valuer) -> None:
        self.app.state.metrics.serving(new, self.app.state.settings.model_name, old)

    async def poll(self, seconds: float) -> None:
        """Reloads when the champion moves. Only a move counts (not a difference from the model
        served), so a version an admin rolled back to stays served until the next promotion."""
        settings = self.app.state.settings
        served = self.app.state.valuer
        seen = None if served is None else str(served.version)
        while True:
            await asyncio.sleep(seconds)
            try:
                champion = await asyncio.to_thread(registry.registered_version, settings)
            except Exception:
                log.exception("polling the registry failed; trying again in %s s", seconds)
                continue
            if champion is None or champion == seen:
                continue
            # Each move is tried once: a refused champion is logged, and tried again only when
            # the champion moves back to it.
            seen = champion
            with suppress(Refused):  # logged by reload; the served model stays
                await self.reload(champion, "polling")


@asynccontextmanager
async def model_updates(app: FastAPI) -> AsyncIterator[None]:
    """For the app's lifespan: reloads possible while it runs, polling too when configured."""
    app.state.model_updates = updates = ModelUpdates(app)
    seconds = app.state.settings.reload_seconds
    polling = asyncio.create_task(updates.poll(seconds)) if seconds > 0 else None
    try:
        yield
    finally:
        if polling is not None:
            polling.cancel()
            with suppress(asyncio.CancelledError):
                await polling
