"""History reads checked together (chat_service.sending, messages_store.PAGES_JSON):
the reads of one turn of the event loop are one statement, and each gets exactly
what its read alone (PAGE_JSON, NEWER_JSON) answers: the same bytes, the same
refusal, the same use of the history cache."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from chat_service import messages_store, store
from chat_service.history_cache import HISTORY_CACHE_KEY, PageKey
from chat_service.messages_store import NO_UPPER_BOUND, NOT_CACHED, Checked, PageRead
from chat_service.sending import PAGE_READS_KEY
from shared.batching import Outcome
from shared.db import POOL_KEY
from shared.metrics import METRICS_KEY
from tests.chat_service.conftest import Headers
from tests.chat_service.helpers import NOT_FOUND, NOT_IN_ROOM, create_room, join, send
from tests.chat_service.test_sends import chat_app, recording

NO_ROOM = 10**9


async def sent(client: TestClient, headers: dict[str, str], room_id: int, text: str) -> int:
    status, answer = await send(client, headers, room_id, text)
    assert status == 201, answer
    message_id: int = answer["message_id"]
    return message_id


def outcome_of(outcome: Outcome[Checked]) -> Any:
    """An outcome, comparable: a Checked as is, a refusal by its type."""
    return type(outcome) if isinstance(outcome, BaseException) else outcome


async def alone(pool: Any, read: PageRead) -> Any:
    try:
        return await messages_store.check_page(pool, read)
    except store.StoreError as exc:
        return type(exc)


async def test_a_batch_answers_each_read_as_its_statement_alone(service, auth: Headers):
    app = service.server.app
    pool = app[POOL_KEY]
    room = await create_room(service, auth("alice"), "history")
    ids = [await sent(service, auth("alice"), room, f"m{n}") for n in range(7)]
    empty = await create_room(service, auth("alice"), "empty")
    private = await create_room(service, auth("bob"), "bob's")
    newest = ids[-1]

    def read(room_id: int, known: int, *, user: str = "alice", **page: Any) -> PageRead:
        forwards = "after" in page
        bound = page.get("after", page.get("before", NO_UPPER_BOUND))
        return PageRead(PageKey(room_id, forwards, bound, page.get("limit", 3)), user, known)

    reads = [
        read(room, newest),  # a cached page still current: no body
        read(room, NOT_CACHED),  # the same page, not cached
        read(room, newest - 1),  # cached before the last send: built again
        read(room, NOT_CACHED, before=ids[3], limit=2),  # a second page of the room
        read(room, NOT_CACHED, after=ids[1]),  # `after=`, more to come
        read(room, NOT_CACHED, after=ids[4], limit=50),  # `after=`, the last page
        read(room, newest, after=ids[1]),  # `after=`, cached and current
        read(empty, NOT_CACHED),  # an empty room
        read(empty, 0),  # an empty room, cached
        read(private, NOT_CACHED),  # not a member
        read(NO_ROOM, NOT_CACHED),  # no such room
        read(room, NOT_CACHED, user="carol"),  # not a member of a room with messages
        read(room, newest),  # the first read again
    ]
    expected = [await alone(pool, r) for r in reads]
    outcomes = await messages_store.check_pages(pool, reads)
    assert [outcome_of(o) for o in outcomes] == expected
    # What the reads alone answer, as the API has it.
    assert expected[0] == expected[6] == expected[12] == Checked(newest, None)
    assert expected[8] == Checked(0, None)
    assert expected[9:12] == [store.NotAMember, store.RoomNotFound, store.NotAMember]
    pages = [json.loads(o.body) for o in expected[1:6] + expected[7:8]]
    assert pages[0] == pages[1]
    assert [m["message_id"] for m in pages[0]["messages"]] == ids[:-4:-1]
    assert pages[0]["next_before"] == ids[-3]
    assert [m["message_id"] for m in pages[2]["messages"]] == [ids[2], ids[1]]
    assert [m["message_id"] for m in pages[3]["messages"]] == ids[2:5]
    assert pages[3]["next_after"] == ids[4]
    assert (
        pages[4]
        == {
            "messages": pages[4]["messages"],
            "next_after": None,
        }
        and [m["message_id"] for m in pages[4]["messages"]] == ids[5:]
    )
    assert pages[5] == {"messages": [], "next_before": None}


async def test_reads_of_one_turn_go_together_and_feed_the_cache_as_alone(service, auth: Headers):
    app = service.server.app
    batcher, cache = app[PAGE_READS_KEY], app[HISTORY_CACHE_KEY]
    room = await create_room(service, auth("alice"), "history")
    ids = [await sent(service, auth("alice"), room, f"m{n}") for n in range(5)]
    other = await create_room(service, auth("bob"), "other")

    async def page(room_id: int, user: str = "alice", *, after: int | None = None) -> Any:
        try:
            if after is not None:
                return await messages_store.messages_after(
                    batcher, cache, room_id, user, limit=3, after=after
                )
            return await messages_store.messages_page(
                batcher, cache, room_id, user, limit=3, before=None
            )
        except store.StoreError as exc:
            return type(exc)

    warm = await page(room)
    assert (cache.served, cache.built) == (0, 1)
    sizes = recording(batcher)
    answers = await asyncio.gather(
        page(room),
        page(room),
        page(room, after=ids[0]),
        page(other),
        page(NO_ROOM),
        page(room, "bob"),
    )
    assert sizes == [6]
    assert answers[:2] == [warm, warm]
    assert json.loads(answers[2])["messages"][0]["message_id"] == ids[1]
    assert answers[3:] == [store.NotAMember, store.RoomNotFound, store.NotAMember]
    # Two served from the cache, one built (and kept), as if each had come alone.
    assert (cache.served, cache.built) == (2, 2)
    assert await page(room, after=ids[0]) == answers[2]
    assert (cache.served, cache.built) == (3, 2)
    # A send, then the same reads together: every page built again, none stale.
    new_id = await sent(service, auth("alice"), room, "news")
    newest, after = await asyncio.gather(page(room), page(room, after=ids[0]))
    assert sizes == [6, 1, 2]
    assert json.loads(newest)["messages"][0]["message_id"] == new_id
    assert json.loads(after)["messages"][-1]["message_id"] == ids[3]
    assert (cache.served, cache.built) == (3, 4)


@pytest.mark.parametrize("kind", ["hit", "miss"])
async def test_concurrent_requests_get_their_own_answers_byte_for_byte(
    api, auth: Headers, request: pytest.FixtureRequest, kind: str
):
    room = await create_room(api, auth("alice"), "General")
    await join(api, auth("bob"), "General")
    for n in range(12):
        await sent(api, auth(("alice", "bob")[n % 2]), room, f"message {n}")
    empty = await create_room(api, auth("bob"), "Empty")
    app: web.Application = chat_app(api, request)
    # Every (user, query) once alone, in turn: the answers the batch must give.
    queries: list[tuple[str, dict[str, Any]]] = [
        ("alice", {"room_id": room}),
        ("bob", {"room_id": room, "limit": 4}),
        ("alice", {"room_id": room, "before": 8, "limit": 2}),
        ("bob", {"room_id": room, "after": 3, "limit": 5}),
        ("alice", {"room_id": room, "after": 0, "limit": 50}),
        ("bob", {"room_id": empty}),
        ("alice", {"room_id": empty}),  # not a member
        ("carol", {"room_id": room, "after": 2}),  # not a member
        ("alice", {"room_id": NO_ROOM}),
    ]

    async def get(user: str, params: dict[str, Any]) -> tuple[int, bytes]:
        query = {key: str(value) for key, value in params.items()}
        async with api.get("/api/get_room_messages", headers=auth(user), params=query) as response:
            return response.status, await response.read()

    if kind == "hit":  # cached first, as the answers alone are
        alone = [await get(user, params) for user, params in queries]
    cache = app[HISTORY_CACHE_KEY]
    counted = (cache.served, cache.built)
    sizes = recording(app[PAGE_READS_KEY])
    answers = await asyncio.gather(*(get(u, p) for _ in range(4) for u, p in queries))
    sizes = list(sizes)  # the statements of these requests
    served, built = cache.served - counted[0], cache.built - counted[1]
    if kind == "miss":
        alone = [await get(user, params) for user, params in queries]
    assert answers == alone * 4
    assert [status for status, _ in alone] == [200] * 6 + [403, 403, 404]
    assert json.loads(alone[6][1]) == NOT_IN_ROOM and json.loads(alone[8][1]) == NOT_FOUND
    assert sum(sizes) == 36 and max(sizes) > 1  # read together, not one by one
    if kind == "hit":
        assert (served, built) == (24, 0)
    else:
        assert served + built == 24
    registry, labels = app[METRICS_KEY].registry, {"batch": "room_messages"}
    batched = registry.get_sample_value("db_batched_items_total", labels)
    batches = registry.get_sample_value("db_batches_total", labels)
    assert (batched, batches) == (sum(n for n in sizes if n > 1), len([n for n in sizes if n > 1]))
