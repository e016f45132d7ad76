"""The history cache (chat_service.history_cache): a page read again is the kept
bytes, once Postgres has said the room's newest message is still the one it was
built at, so every answer is exactly what Postgres would write now: after sends
(from this replica or another), for every kind of page, for a removed member or a
deleted room, whatever the cache's bound."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from chat_service import sends_store, store
from chat_service.app import create_app
from chat_service.events import RoomEvents
from chat_service.history_cache import (
    ENTRY_OVERHEAD_BYTES,
    HISTORY_CACHE_KEY,
    CachedPage,
    PageCache,
    PageKey,
)
from shared.db import POOL_KEY
from shared.realtime import REALTIME_KEY
from tests.chat_service.conftest import Headers
from tests.chat_service.helpers import (
    NOT_FOUND,
    NOT_IN_ROOM,
    call,
    create_room,
    join,
    send,
    until_waiting_on_a_lock,
)
from tests.integration.metrics_helpers import scrape

EMPTY = b'{"messages":[],"next_before":null}'


async def page(client: TestClient, headers: dict[str, str], room_id: int, **params: Any) -> bytes:
    """The page's bytes, as the client gets them."""
    query = {"room_id": str(room_id), **{key: str(value) for key, value in params.items()}}
    async with client.get("/api/get_room_messages", headers=headers, params=query) as response:
        assert response.status == 200, await response.text()
        return await response.read()


async def pages_counted(client: TestClient) -> tuple[float | None, float | None]:
    """(served from the cache, built by Postgres), from /metrics."""
    metrics = await scrape(client)
    return (
        metrics.value("chat_history_pages_total", source="cache"),
        metrics.value("chat_history_pages_total", source="built"),
    )


def ids(body: bytes) -> list[int]:
    return [message["message_id"] for message in json.loads(body)["messages"]]


async def sent(client: TestClient, headers: dict[str, str], room_id: int, text: str) -> int:
    status, answer = await send(client, headers, room_id, text)
    assert status == 201, answer
    message_id: int = answer["message_id"]
    return message_id


@pytest.fixture
async def room(service: TestClient, auth: Headers) -> int:
    room_id = await create_room(service, auth(), "cached")
    for index in range(5):
        await sent(service, auth(), room_id, f"m{index}")
    return room_id


async def test_a_page_read_again_is_served_from_the_cache_byte_for_byte(service, auth, room):
    assert await pages_counted(service) == (0, 0)
    first = await page(service, auth(), room, limit=3)
    assert await pages_counted(service) == (0, 1)
    again = await page(service, auth(), room, limit=3)
    assert await pages_counted(service) == (1, 1)
    assert again == first
    assert len(ids(first)) == 3
    # Another limit is another page.
    await page(service, auth(), room, limit=4)
    assert await pages_counted(service) == (1, 2)
    metrics = await scrape(service)
    assert metrics.value("chat_history_cache_entries") == 2
    assert (
        metrics.value("chat_history_cache_bytes")
        == len(first) + len(await page(service, auth(), room, limit=4)) + 2 * ENTRY_OVERHEAD_BYTES
    )


async def test_a_send_shows_in_every_page_read_after_it(service, auth, room):
    newest = await page(service, auth(), room, limit=3)
    oldest_first = ids(newest)[-1]
    after = await page(service, auth(), room, after=oldest_first)
    before = await page(service, auth(), room, before=ids(newest)[0], limit=2)
    # Warm: each read again is served from the cache.
    for params in ({"limit": 3}, {"after": oldest_first}, {"before": ids(newest)[0], "limit": 2}):
        await page(service, auth(), room, **params)
    assert await pages_counted(service) == (3, 3)

    new_id = await sent(service, auth(), room, "news")
    now_newest = await page(service, auth(), room, limit=3)
    assert ids(now_newest) == [new_id, *ids(newest)[:2]]
    assert json.loads(now_newest)["messages"][0]["message"] == "news"
    now_after = await page(service, auth(), room, after=oldest_first)
    assert ids(now_after) == [*ids(after), new_id]
    # Older pages hold the same messages as before (append-only), built again.
    assert await page(service, auth(), room, before=ids(newest)[0], limit=2) == before
    assert await pages_counted(service) == (3, 6)


async def test_an_empty_room_is_cached_and_shows_its_first_message(service, auth):
    room_id = await create_room(service, auth(), "empty")
    assert await page(service, auth(), room_id) == EMPTY
    assert await page(service, auth(), room_id) == EMPTY
    assert await pages_counted(service) == (1, 1)
    assert await page(service, auth(), room_id, after=0) == b'{"messages":[],"next_after":null}'
    first = await sent(service, auth(), room_id, "first")
    assert ids(await page(service, auth(), room_id)) == [first]
    assert ids(await page(service, auth(), room_id, after=0)) == [first]


async def test_a_removed_member_and_a_deleted_room_are_refused_with_a_warm_cache(
    service, auth, room
):
    assert (await join(service, auth("bob"), "cached"))[0] == 200
    warm = await page(service, auth("bob"), room)
    assert await page(service, auth("bob"), room) == warm
    assert await pages_counted(service) == (1, 1)
    status, _ = await call(service, "POST", "/api/leave_room", auth("bob"), json={"room_id": room})
    assert status == 200
    assert await call(
        service, "GET", "/api/get_room_messages", auth("bob"), params={"room_id": str(room)}
    ) == (403, NOT_IN_ROOM)
    # The creator's page is still served from the cache; then the room goes.
    assert await page(service, auth(), room) == warm
    status, _ = await call(service, "POST", "/api/delete_room", auth(), json={"room_id": room})
    assert status == 200
    for params in ({}, {"after": 0}, {"before": 3}):
        query = {"room_id": str(room), **{k: str(v) for k, v in params.items()}}
        assert await call(service, "GET", "/api/get_room_messages", auth(), params=query) == (
            404,
            NOT_FOUND,
        )
    assert await pages_counted(service) == (2, 1)


async def test_another_replica_s_send_shows_without_any_message_between_them(
    service, aiohttp_client, chat_settings, auth, room
):
    other: TestClient = await aiohttp_client(create_app(chat_settings))
    before = await page(service, auth(), room)
    assert await page(service, auth(), room) == before
    new_id = await sent(other, auth(), room, "from the other replica")
    assert ids(await page(service, auth(), room)) == [new_id, *ids(before)]


async def test_the_bound_evicts_the_least_recently_used(aiohttp_client, chat_settings, auth):
    # Room for two of these pages, not three.
    one_page = len(b'{"messages":[],"next_before":null}') + ENTRY_OVERHEAD_BYTES
    settings = chat_settings.model_copy(update={"history_cache_bytes": 2 * one_page})
    client: TestClient = await aiohttp_client(create_app(settings))
    rooms = [await create_room(client, auth(), f"room {index}") for index in range(3)]
    for room_id in rooms[:2]:
        assert await page(client, auth(), room_id) == EMPTY
    assert await page(client, auth(), rooms[0]) == EMPTY  # cached, now most recent
    assert await pages_counted(client) == (1, 2)
    assert await page(client, auth(), rooms[2]) == EMPTY  # evicts rooms[1]'s
    metrics = await scrape(client)
    assert metrics.value("chat_history_cache_entries") == 2
    assert metrics.value("chat_history_cache_bytes") == 2 * one_page
    assert await page(client, auth(), rooms[0]) == EMPTY
    assert await pages_counted(client) == (2, 3)
    assert await page(client, auth(), rooms[1]) == EMPTY
    assert await pages_counted(client) == (2, 4)


async def test_a_cache_of_zero_bytes_keeps_nothing_and_answers_the_same(
    aiohttp_client, chat_settings, auth
):
    settings = chat_settings.model_copy(update={"history_cache_bytes": 0})
    client: TestClient = await aiohttp_client(create_app(settings))
    room_id = await create_room(client, auth(), "uncached")
    first = await sent(client, auth(), room_id, "one")
    body = await page(client, auth(), room_id)
    assert ids(body) == [first]
    assert await page(client, auth(), room_id) == body
    second = await sent(client, auth(), room_id, "two")
    assert ids(await page(client, auth(), room_id)) == [second, first]
    assert await pages_counted(client) == (0, 3)
    assert len(client.app[HISTORY_CACHE_KEY]) == 0


async def test_every_acknowledged_send_is_in_every_read_that_starts_after_it(service, auth):
    """50 sends (batched and keyed) and reads all at once: a read sees at least every
    message whose 201 came before it started, from the cache or not."""
    room_id = await create_room(service, auth(), "busy")
    acknowledged: set[int] = set()
    keys = itertools.count()

    async def sender(index: int) -> None:
        headers = auth()
        if index % 5 == 0:
            headers = {**headers, "Idempotency-Key": f"busy-{next(keys)}"}
        acknowledged.add(await sent(service, headers, room_id, f"message {index}"))

    async def reader(after: bool) -> None:
        for _ in range(10):
            seen = set(acknowledged)
            params = {"after": 0, "limit": 100} if after else {"limit": 100}
            assert seen <= set(ids(await page(service, auth(), room_id, **params)))

    await asyncio.gather(
        *(sender(index) for index in range(50)), *(reader(index % 2 == 0) for index in range(8))
    )
    assert len(acknowledged) == 50
    final = await page(service, auth(), room_id, limit=100)
    assert set(ids(final)) == acknowledged
    served, built = await pages_counted(service)
    assert served is not None and built is not None and served + built == 81


async def test_a_message_slow_to_commit_is_not_hidden_by_a_cached_page(service, auth, db, room):
    """Why the newest id is enough: a room's messages commit in id order. Were a
    later message able to commit first, a page cached at its id would be served
    again after the earlier one committed, without it."""
    app = service.server.app
    before = ids(await page(service, auth(), room))
    async with app[POOL_KEY].acquire() as conn:
        slow = conn.transaction()
        await slow.start()
        try:
            held = await store.send_message(
                conn, room, "alice", "slow", RoomEvents(app[REALTIME_KEY])
            )
            fast = asyncio.ensure_future(send(service, auth(), room, "fast"))
            await until_waiting_on_a_lock(db, fast)
            # Neither shows yet; the page is cached at the newest committed id.
            assert ids(await page(service, auth(), room)) == before
            assert ids(await page(service, auth(), room)) == before
        finally:
            await slow.commit()
    status, answer = await fast
    assert status == 201, answer
    assert ids(await page(service, auth(), room)) == [
        answer["message_id"],
        held.message_id,
        *before,
    ]


def test_every_insert_into_room_messages_locks_its_room_until_commit():
    """The other half of why a cached page is exact (chat_service.history_cache): a
    new way of storing messages must take the room's row lock, as these do."""
    sources = Path(store.__file__).parent.glob("**/*.py")
    inserts = sum(path.read_text().count("INSERT INTO room_messages") for path in sources)
    statements = (
        store.SEND_MESSAGE,
        store.SEND_MESSAGE_AND_NOTIFY,
        sends_store.SEND_MANY,
    )
    # store._SEND (both of its statements) and sends_store._SEND_MANY.
    assert inserts == 2, "a new INSERT INTO room_messages: does it lock the room until commit?"
    for statement in statements:
        locked = statement.index("FOR NO KEY UPDATE OF r")
        inserted = statement.index("INSERT INTO room_messages")
        # The room is locked by an earlier CTE the insert reads from.
        assert locked < inserted, statement


def test_the_cache_keeps_the_page_built_at_the_newer_id():
    cache = PageCache(10_000)
    key = PageKey(1, forwards=False, bound=5, limit=2)
    cache.put(key, CachedPage(7, b"seven"))
    cache.put(key, CachedPage(6, b"six"))  # built by a request that saw less
    assert cache.get(key) == CachedPage(7, b"seven")
    cache.put(key, CachedPage(8, b"eight"))
    assert cache.get(key) == CachedPage(8, b"eight")
    assert cache.bytes == len(b"eight") + ENTRY_OVERHEAD_BYTES
    # A page bigger than the whole bound is not kept (nor evicts the others).
    small = PageCache(ENTRY_OVERHEAD_BYTES + 3)
    small.put(key, CachedPage(1, b"abcd"))
    assert len(small) == 0 and small.bytes == 0
