"""The chat's batchers (shared.batching), as app resources: the statements concurrent
requests share.

Keyless sends: the messages that requests send during one turn of the event loop are
stored by one statement (sends_store), a message alone by store.send_message's; while
SEND_STATEMENTS_IN_FLIGHT (1) of them run, what arrives waits and goes in the next
(group commit: every batch locks its rooms, so more at once mostly wait in Postgres
for the one before). A send with an Idempotency-Key runs in its key's transaction
instead (routes.send_room_message).

History reads: the pages read during one turn of the event loop (newest, `before=`,
`after=`) are checked against the history cache by one statement
(messages_store.check_pages), a read alone by its one-page statement
(messages_store.check_page); each read still gets its own answer.

A request waits for its batch holding no connection of the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial

from aiohttp import web

from chat_service import messages_store, sends_store, store
from chat_service.events import RoomEvents
from chat_service.messages_store import PageReads
from chat_service.sends_store import Send
from chat_service.settings import ChatSettings
from shared.batching import Batcher, serving
from shared.db import POOL_KEY
from shared.realtime import REALTIME_KEY

SENDS_KEY = web.AppKey("sends", Batcher[Send, store.Sent])
PAGE_READS_KEY = web.AppKey("page_reads", PageReads)


def batchers_ctx(settings: ChatSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context: after the database's and the realtime one, whose pool and
    channel it uses; at cleanup, the batches under way finish before the pool closes."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = app[POOL_KEY]
        events = RoomEvents(app[REALTIME_KEY])

        async def one(send: Send) -> store.Sent:
            return await store.send_message(pool, send.room_id, send.username, send.text, events)

        async def many(sends: Sequence[Send]) -> list[store.Sent | store.StoreError]:
            return await sends_store.send_messages(pool, sends, events.channel)

        # At most send_statements_in_flight send statements at once (group commit): the
        # sends that arrive meanwhile go together in the next one, rather than each
        # turn's few waiting in Postgres for the room lock the one before holds.
        sends = Batcher(one, many, max_in_flight=settings.send_statements_in_flight)
        app[SENDS_KEY] = sends
        app[PAGE_READS_KEY] = reads = Batcher(
            partial(messages_store.check_page, pool), partial(messages_store.check_pages, pool)
        )
        async with serving(app, {"send_room_message": sends, "room_messages": reads}):
            yield

    return ctx
