"""Expired rows go: login attempts older than every limit's window, and refresh
tokens past their expiry. Every replica runs the purge; deletes are idempotent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from gateway import login_limits, tokens_store
from gateway.identity import SETTINGS_KEY
from gateway.settings import GatewaySettings
from shared.background import background
from shared.db import POOL_KEY
from shared.errors import FAULTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purged:
    attempts: int
    refresh_tokens: int


def attempts_kept_s(settings: GatewaySettings) -> int:
    """Attempts matter for the longest window any limit counts them in."""
    return max(settings.login_window_s, settings.register_window_s, settings.guest_window_s)


async def purge(pool: asyncpg.Pool, settings: GatewaySettings) -> Purged:
    async with pool.acquire() as conn:
        attempts = await login_limits.purge(conn, attempts_kept_s(settings))
        tokens = await tokens_store.purge_expired(conn)
    return Purged(attempts, tokens)


class Rounds:
    """Counts finished purge rounds, for whoever must know one ran (tests, probes)."""

    def __init__(self) -> None:
        self.finished = 0
        self._changed = asyncio.Condition()

    async def done(self) -> None:
        async with self._changed:
            self.finished += 1
            self._changed.notify_all()

    async def wait_for(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.finished >= count)


ROUNDS_KEY = web.AppKey("purge_rounds", Rounds)


async def _every(app: web.Application, settings: GatewaySettings) -> None:
    rounds = app[ROUNDS_KEY]
    while True:
        try:
            purged = await purge(app[POOL_KEY], settings)
            if purged.attempts or purged.refresh_tokens:
                log.info(
                    "purged expired rows",
                    extra={"attempts": purged.attempts, "refresh_tokens": purged.refresh_tokens},
                )
        except FAULTS as exc:
            log.warning("purge skipped: database unavailable", extra={"error": repr(exc)})
        except Exception:
            log.exception("purge failed")
        await rounds.done()
        await asyncio.sleep(settings.purge_interval_s)


async def purge_task_ctx(app: web.Application) -> AsyncIterator[None]:
    """Once at start, then every PURGE_INTERVAL_S, until the app stops."""
    app[ROUNDS_KEY] = Rounds()
    async with background(_every(app, app[SETTINGS_KEY])):
        yield
