"""The statements concurrent requests share (shared.batching), as app resources.

Under load, the lookups by code that arrive in one turn of the event loop go to
Postgres as one statement (`rooms_store.rooms_by_codes`); a lookup alone is the
usual one-row statement. Each request still gets its own answer, byte for byte
the one it would have had alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from meeting_service import rooms_store
from shared.batching import BatchCollector, Batcher
from shared.db import POOL_KEY
from shared.metrics import METRICS_KEY

ROOM_BY_CODE_KEY: web.AppKey[Batcher[str, bytes]] = web.AppKey("room_by_code_batcher")


async def batchers_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the pool's context (it runs on the pool), so before it at cleanup: the
    batches under way finish while the pool is still open."""
    pool = app[POOL_KEY]
    app[ROOM_BY_CODE_KEY] = Batcher(
        partial(rooms_store.room_by_code, pool), partial(rooms_store.rooms_by_codes, pool)
    )
    app[METRICS_KEY].add_collector(BatchCollector({"room_by_code": app[ROOM_BY_CODE_KEY]}))
    yield
    await asyncio.gather(app[ROOM_BY_CODE_KEY].wait_idle())
