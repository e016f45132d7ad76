"""The statements concurrent requests share (shared.batching), as app resources.

Under load, the lookups by code that arrive in one turn of the event loop go to
Postgres as one statement (`rooms_store.rooms_by_codes`), and so do the creates
without an Idempotency-Key (`rooms_store.create_rooms`; a keyed create runs in its
key's transaction, alone); one alone is the usual one-row statement. Each request
still gets its own answer, byte for byte the one it would have had alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from meeting_service import rooms_store
from meeting_service.room_codes import CODE_GENERATOR_KEY
from shared.batching import Batcher, serving
from shared.db import POOL_KEY

ROOM_BY_CODE_KEY: web.AppKey[Batcher[str, bytes]] = web.AppKey("room_by_code_batcher")
NEW_ROOM_KEY: web.AppKey[Batcher[rooms_store.NewRoom, bytes]] = web.AppKey("new_room_batcher")


async def batchers_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the pool's context (it runs on the pool), so before it at cleanup: the
    batches under way finish while the pool is still open."""
    pool = app[POOL_KEY]
    app[ROOM_BY_CODE_KEY] = Batcher(
        partial(rooms_store.room_by_code, pool), partial(rooms_store.rooms_by_codes, pool)
    )
    generate_code = app[CODE_GENERATOR_KEY]
    app[NEW_ROOM_KEY] = Batcher(
        partial(rooms_store.create_room_alone, pool, generate_code),
        partial(rooms_store.create_rooms, pool, generate_code),
    )
    async with serving(
        app, {"room_by_code": app[ROOM_BY_CODE_KEY], "create_room": app[NEW_ROOM_KEY]}
    ):
        yield
