"""This replica's part in presence: its id, its heartbeat, and the purges of dead
replicas and expired signals, run periodically by every replica."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from meeting_service import presence_store, signals_store
from meeting_service.settings import MeetingSettings
from shared.background import background
from shared.db import POOL_KEY
from shared.ids import new_id
from shared.realtime import REALTIME_KEY, RESYNC

log = logging.getLogger(__name__)

REPLICA_KEY = web.AppKey("replica_id", str)


async def _beat(app: web.Application, settings: MeetingSettings) -> None:
    pool, events, me = app[POOL_KEY], app[REALTIME_KEY], app[REPLICA_KEY]
    while True:
        await asyncio.sleep(settings.presence_heartbeat_s)
        try:
            if not await presence_store.heartbeat(pool, me):
                # Taken for dead meanwhile (a long pause, the database lost): our
                # sockets no longer count as connected. Their clients reconnect.
                log.warning("replica was purged as stale; sockets asked to reconnect")
                events.end_all(RESYNC)
            await presence_store.purge_replicas(pool, events, stale_s=settings.presence_stale_s)
            await signals_store.purge_signals(pool, settings.signal_ttl_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("presence heartbeat failed", extra={"error": repr(exc)})


def presence_ctx(
    settings: MeetingSettings,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context, after the realtime one (it publishes presence events)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[REPLICA_KEY] = replica = new_id()
        await presence_store.register_replica(app[POOL_KEY], replica)
        try:
            async with background(_beat(app, settings)):
                yield
        finally:
            # Sockets were closed at shutdown; whatever is left goes with us.
            with contextlib.suppress(Exception):
                await presence_store.purge_replicas(
                    app[POOL_KEY], app[REALTIME_KEY], stale_s=0, only=replica
                )

    return ctx
