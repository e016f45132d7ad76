"""Keyless sends go through a `Batcher` (shared.batching): the messages that requests
send during one turn of the event loop are stored by one statement (sends_store), a
message alone by store.send_message's. A request waits for its batch holding no
connection of the pool; a send with an Idempotency-Key runs in its key's
transaction instead (routes.send_room_message)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from chat_service import sends_store, store
from chat_service.events import RoomEvents
from chat_service.sends_store import Send
from shared.batching import Batcher, serving
from shared.db import POOL_KEY
from shared.realtime import REALTIME_KEY

SENDS_KEY = web.AppKey("sends", Batcher[Send, store.Sent])


async def sends_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: after the database's and the realtime one, whose pool and
    channel it uses; at cleanup, the batches under way finish before the pool closes."""
    pool = app[POOL_KEY]
    events = RoomEvents(app[REALTIME_KEY])

    async def one(send: Send) -> store.Sent:
        return await store.send_message(pool, send.room_id, send.username, send.text, events)

    async def many(sends: Sequence[Send]) -> list[store.Sent | store.StoreError]:
        return await sends_store.send_messages(pool, sends, events.channel)

    app[SENDS_KEY] = batcher = Batcher(one, many)
    async with serving(app, {"send_room_message": batcher}):
        yield
