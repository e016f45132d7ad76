"""Keyless sends stored together (chat_service.sending, sends_store): each request
gets exactly its own answer, every message is stored once in the order sent, its
listeners hear it once in id order, and `after=` never skips one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from chat_service import messages_store, store
from chat_service.events import CHANNEL, RoomEvents
from chat_service.models import MessageSent
from chat_service.sending import SENDS_KEY
from chat_service.sends_store import Send, send_messages
from shared.db import POOL_KEY
from shared.metrics import METRICS_KEY
from shared.realtime import REALTIME_KEY
from tests.chat_service.helpers import (
    NOT_FOUND,
    NOT_IN_ROOM,
    TIMEOUT_S,
    create_room,
    history,
    join,
    send,
    until_waiting_on_a_lock,
)

NO_ROOM = 10**9


def notification(room_id: int, message_id: int) -> str:
    """The payload of a sent message's NOTIFY, as Postgres' json_build_object writes it."""
    return f'{{"topic" : "{room_id}", "event" : {{"message_id" : {message_id}}}}}'


class Heard:
    """The payloads of the notifications a connection of its own receives on CHANNEL."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self._arrived = asyncio.Event()

    def on_notify(self, *args: Any) -> None:
        self.payloads.append(args[-1])
        self._arrived.set()

    async def until(self, count: int) -> list[str]:
        async with asyncio.timeout(TIMEOUT_S):
            while len(self.payloads) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.payloads


async def expected_answer(pool: asyncpg.Pool, message_id: int) -> bytes:
    """MessageSent's JSON for a stored message, as the API writes it."""
    message = await messages_store.message_by_id(pool, message_id)
    assert message is not None
    sent = MessageSent(message="sent", message_id=message_id, created_at=message.created_at)
    return sent.model_dump_json().encode()


async def test_one_statement_answers_each_send_and_stores_each_message_once(
    service, auth, db, database_url
):
    pool = service.server.app[POOL_KEY]
    general = await create_room(service, auth("alice"), "General")
    other = await create_room(service, auth("bob"), "Other")
    await join(service, auth("carol"), "General")
    sends = [
        Send(general, "alice", "g1"),
        Send(other, "alice", "not in other"),  # alice is not in Other
        Send(NO_ROOM, "alice", "nowhere"),
        Send(other, "bob", "o1"),
        Send(general, "carol", "g2"),
        Send(general, "bob", "not in general"),
        Send(general, "alice", "g3"),
        Send(other, "bob", "o2"),
        Send(NO_ROOM + 1, "bob", "nowhere either"),
        Send(general, "carol", "g4"),
        Send(general, "alice", "g1"),  # the same message again is another message
    ]
    heard = Heard()
    listener = await asyncpg.connect(database_url)
    await listener.add_listener(CHANNEL, heard.on_notify)
    try:
        outcomes = await send_messages(pool, sends, CHANNEL)
        refusals = {1: store.NotAMember, 2: store.RoomNotFound, 5: store.NotAMember}
        refusals[8] = store.RoomNotFound
        assert [type(o) for o in outcomes] == [
            refusals.get(n, store.Sent) for n in range(len(sends))
        ]
        sent = [(s, o) for s, o in zip(sends, outcomes, strict=True) if isinstance(o, store.Sent)]
        ids = [o.message_id for _, o in sent]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)  # in the order sent
        rows = await db.fetch("SELECT id, room_id, username, body FROM chat.room_messages")
        assert sorted(tuple(row) for row in rows) == [
            (o.message_id, s.room_id, s.username, s.text) for s, o in sent
        ]
        for _, o in sent:
            assert o.answer == await expected_answer(pool, o.message_id)
        # One NOTIFY per message, in id order, as a lone send's.
        await heard.until(len(sent))
        lone = await store.send_message(
            pool, general, "alice", "alone", RoomEvents(service.server.app[REALTIME_KEY])
        )
        assert await heard.until(len(sent) + 1) == [
            notification(s.room_id, o.message_id) for s, o in sent
        ] + [notification(general, lone.message_id)]
    finally:
        await listener.close()


async def test_the_nth_message_inserted_takes_the_nth_id(service, auth, db):
    """The statement maps RETURNING's rows back to its sends by the rank of their
    ids (INSERT ... SELECT ... ORDER BY takes identity values in that order): with
    refusals between them, each send's id is its own message's."""
    pool = service.server.app[POOL_KEY]
    rooms = [await create_room(service, auth("alice"), f"room {n}") for n in range(4)]
    sends = [
        Send(rooms[n % 4] if n % 5 else NO_ROOM, "alice" if n % 7 else "mallory", f"m{n}")
        for n in range(60)
    ]
    outcomes = await send_messages(pool, sends, CHANNEL)
    stored = {
        row["id"]: (row["room_id"], row["username"], row["body"])
        for row in await db.fetch("SELECT id, room_id, username, body FROM chat.room_messages")
    }
    accepted = [n for n in range(60) if n % 5 and n % 7]
    assert len(stored) == len(accepted)
    for n, (one, outcome) in enumerate(zip(sends, outcomes, strict=True)):
        if n in accepted:
            assert isinstance(outcome, store.Sent)
            assert stored[outcome.message_id] == (one.room_id, one.username, one.text)
        else:
            assert isinstance(outcome, store.RoomNotFound if n % 5 == 0 else store.NotAMember)


async def test_a_message_the_table_refuses_fails_the_statement_and_stores_nothing(
    service, auth, db
):
    """(The Batcher then runs each send alone, so only that one fails.)"""
    room_id = await create_room(service, auth("alice"), "General")
    sends = [Send(room_id, "alice", "fine"), Send(room_id, "alice", "x" * 4001)]
    with pytest.raises(asyncpg.CheckViolationError):
        await send_messages(service.server.app[POOL_KEY], sends, CHANNEL)
    assert await db.fetchval("SELECT count(*) FROM chat.room_messages") == 0


async def test_batches_locking_the_same_rooms_never_deadlock(service, auth, db):
    """Each statement locks its rooms in id order, whatever order its sends name them."""
    pool = service.server.app[POOL_KEY]
    rooms = [await create_room(service, auth("alice"), f"room {n}") for n in range(3)]
    batches = [
        [Send(room_id, "alice", f"{b}-{room_id}") for room_id in rooms[:: 1 if b % 2 else -1]]
        for b in range(16)
    ]
    results = await asyncio.gather(*(send_messages(pool, batch, CHANNEL) for batch in batches))
    assert all(isinstance(o, store.Sent) for outcomes in results for o in outcomes)
    assert await db.fetchval("SELECT count(*) FROM chat.room_messages") == 16 * 3


async def test_a_batch_waits_for_a_room_a_slow_send_holds_and_commits_after_it(service, auth, db):
    """A room's messages commit in the order of their ids, batch or not: the batch's
    message to that room waits on its lock, and takes its id once it holds it."""
    pool = service.server.app[POOL_KEY]
    events = RoomEvents(service.server.app[REALTIME_KEY])
    busy = await create_room(service, auth("alice"), "Busy")
    quiet = await create_room(service, auth("alice"), "Quiet")
    async with pool.acquire() as conn:
        slow = conn.transaction()
        await slow.start()
        try:
            first = await store.send_message(conn, busy, "alice", "slow", events)
            batch = [Send(quiet, "alice", "q"), Send(busy, "alice", "b")]
            sending = asyncio.ensure_future(send_messages(pool, batch, CHANNEL))
            await until_waiting_on_a_lock(db, sending)
            assert await history(service, auth("alice"), quiet, after=0) == (
                200,
                {"messages": [], "next_after": None},
            )
        finally:
            await slow.commit()
    outcomes = await sending
    assert all(isinstance(o, store.Sent) for o in outcomes)
    assert first.message_id < min(o.message_id for o in outcomes if isinstance(o, store.Sent))


def recording(batcher: Any) -> list[int]:
    """The size of each statement `batcher` runs from now on."""
    sizes: list[int] = []
    one, many = batcher.run_one, batcher.run_many

    async def run_one(item: Any) -> Any:
        sizes.append(1)
        return await one(item)

    async def run_many(items: Sequence[Any]) -> Any:
        sizes.append(len(items))
        return await many(items)

    batcher.run_one, batcher.run_many = run_one, run_many
    return sizes


def chat_app(api: Any, request: pytest.FixtureRequest) -> web.Application:
    """The chat service's app that `api` reaches, itself or behind the gateway."""
    if request.node.callspec.params["api"] == "service":
        app: web.Application = api.server.app
        return app
    return request.getfixturevalue("gateway_stack").chat.app


async def test_simultaneous_sends_each_get_their_own_answer(api, auth, db, request):
    general = await create_room(api, auth("alice"), "General")
    other = await create_room(api, auth("bob"), "Other")
    await join(api, auth("carol"), "General")
    await join(api, auth("carol"), "Other")
    app = chat_app(api, request)
    sizes = recording(app[SENDS_KEY])
    who = ["alice", "bob", "carol", "mallory"]
    sends = [(who[n % 4], (general, other, NO_ROOM)[n % 3], f"message {n}") for n in range(60)]
    members = {general: {"alice", "carol"}, other: {"bob", "carol"}}
    answers = await asyncio.gather(*(send(api, auth(u), room, text) for u, room, text in sends))
    pool = app[POOL_KEY]
    stored = {
        row["id"]: (row["username"], row["room_id"], row["body"])
        for row in await db.fetch("SELECT id, room_id, username, body FROM chat.room_messages")
    }
    accepted = []
    for (user, room, text), (status, body) in zip(sends, answers, strict=True):
        if room == NO_ROOM:
            assert (status, body) == (404, NOT_FOUND)
        elif user not in members[room]:
            assert (status, body) == (403, NOT_IN_ROOM)
        else:
            assert status == 201
            assert stored[body["message_id"]] == (user, room, text)
            expected = json.loads(await expected_answer(pool, body["message_id"]))
            assert body == expected
            accepted.append(body["message_id"])
    assert [status for status, _ in answers].count(404) == 20
    assert [status for status, _ in answers].count(403) == 20
    assert len(accepted) == len(stored) == 20
    assert sum(sizes) == 60 and max(sizes) > 1  # sent together, not one by one
    registry, labels = app[METRICS_KEY].registry, {"batch": "send_room_message"}
    batched = registry.get_sample_value("db_batched_items_total", labels)
    lone = registry.get_sample_value("db_lone_items_total", labels)
    assert (batched, lone) == (sum(n for n in sizes if n > 1), sizes.count(1))


async def test_a_listener_hears_every_message_of_a_batch_once_in_id_order(service, auth):
    general = await create_room(service, auth("alice"), "General")
    other = await create_room(service, auth("alice"), "Other")
    await join(service, auth("bob"), "General")
    sizes = recording(service.server.app[SENDS_KEY])
    async with service.ws_connect(f"/api/rooms/{general}/ws", headers=auth("alice")) as ws:
        answers = await asyncio.gather(
            *(send(service, auth(("alice", "bob")[n % 2]), general, f"m{n}") for n in range(30)),
            *(send(service, auth("alice"), other, f"o{n}") for n in range(10)),
            *(send(service, auth("mallory"), general, f"x{n}") for n in range(5)),
        )
        assert [status for status, _ in answers] == [201] * 40 + [403] * 5
        ids = [body["message_id"] for _, body in answers[:30]]
        received = [await ws.receive_json(timeout=TIMEOUT_S) for _ in ids]
        assert [m["message_id"] for m in received] == sorted(ids)
        assert sorted(m["message"] for m in received) == sorted(f"m{n}" for n in range(30))
        # Nothing more: the next thing heard is the next message.
        _, last = await send(service, auth("alice"), general, "last")
        assert (await ws.receive_json(timeout=TIMEOUT_S))["message_id"] == last["message_id"]
    assert max(sizes) > 1


async def test_a_reader_following_with_after_misses_nothing(service, auth):
    """A reader polls `after=` its last id while batches commit: a smaller id
    committed after a larger one was read would be skipped for good."""
    rooms = [await create_room(service, auth("alice"), f"room {n}") for n in range(2)]
    seen: dict[int, list[int]] = {room_id: [] for room_id in rooms}
    done = asyncio.Event()

    async def follow(room_id: int) -> None:
        while True:
            finished = done.is_set()
            last = seen[room_id][-1] if seen[room_id] else 0
            status, page = await history(service, auth("alice"), room_id, after=last, limit=100)
            assert status == 200
            seen[room_id].extend(m["message_id"] for m in page["messages"])
            if finished and page["next_after"] is None:
                return

    async def write() -> list[tuple[int, Any]]:
        sent = []
        for wave in range(6):
            sent += await asyncio.gather(
                *(send(service, auth(), rooms[n % 2], f"{wave}-{n}") for n in range(20))
            )
        done.set()
        return sent

    sent, *_ = await asyncio.gather(write(), *(follow(room_id) for room_id in rooms))
    assert [status for status, _ in sent] == [201] * 120
    for room_id in rooms:
        _, page = await history(service, auth(), room_id, limit=100)
        assert seen[room_id] == sorted(m["message_id"] for m in page["messages"])
        assert len(seen[room_id]) == 60


async def test_sends_submitted_at_shutdown_are_stored_before_the_pool_closes(service, auth, db):
    room_id = await create_room(service, auth("alice"), "General")
    batcher = service.server.app[SENDS_KEY]
    # Not yet run when the app's cleanup starts.
    sends = [
        asyncio.ensure_future(batcher.submit(Send(room_id, "alice", f"m{n}"))) for n in range(3)
    ]
    await service.close()
    outcomes = await asyncio.gather(*sends)
    stored = await db.fetch("SELECT id, body FROM chat.room_messages ORDER BY id")
    assert [(row["id"], row["body"]) for row in stored] == [
        (sent.message_id, f"m{n}") for n, sent in enumerate(outcomes)
    ]


async def test_keyed_sends_among_keyless_ones_are_sent_once_and_replayed(service, auth, db):
    """A send with an Idempotency-Key runs in its key's transaction, not in a batch:
    its retries, simultaneous with keyless sends, get its first answer again."""
    room_id = await create_room(service, auth("alice"), "General")
    keyed = {**auth("alice"), "Idempotency-Key": "send-1"}

    async def keyed_send() -> tuple[int, Any, str | None]:
        async with service.post(
            "/api/send_room_message",
            json={"room_id": room_id, "message": "once"},
            headers=keyed,
        ) as response:
            return (
                response.status,
                await response.json(),
                response.headers.get("Idempotent-Replayed"),
            )

    answers = await asyncio.gather(
        *(send(service, auth("alice"), room_id, f"m{n}") for n in range(10)),
        *(keyed_send() for _ in range(5)),
    )
    assert [status for status, _ in answers[:10]] == [201] * 10
    retries = answers[10:]
    assert {(status, body["message_id"]) for status, body, _ in retries} == {
        (201, retries[0][1]["message_id"])
    }
    assert sorted(replayed or "" for _, _, replayed in retries) == [""] + ["true"] * 4
    assert await db.fetchval("SELECT count(*) FROM chat.room_messages WHERE body = 'once'") == 1
    assert await db.fetchval("SELECT count(*) FROM chat.room_messages") == 11


async def test_a_batch_waiting_on_a_deletion_refuses_that_rooms_sends_only(service, auth, db):
    """The deletion holds the room's row; once it commits, the row the batch waited
    for is gone: that room's sends are 404 and store nothing, the others are sent."""
    pool = service.server.app[POOL_KEY]
    doomed = await create_room(service, auth("alice"), "Doomed")
    kept = await create_room(service, auth("alice"), "Kept")
    batch = [Send(doomed, "alice", "d1"), Send(kept, "alice", "k"), Send(doomed, "alice", "d2")]
    async with db.transaction():
        await db.execute("DELETE FROM chat.rooms WHERE id = $1", doomed)
        sending = asyncio.ensure_future(send_messages(pool, batch, CHANNEL))
        await until_waiting_on_a_lock(db, sending)
    outcomes = await sending
    assert [type(o) for o in outcomes] == [store.RoomNotFound, store.Sent, store.RoomNotFound]
    rows = await db.fetch("SELECT room_id, body FROM chat.room_messages")
    assert [tuple(row) for row in rows] == [(kept, "k")]
