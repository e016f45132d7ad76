"""`after`: a reconnecting client says the last message id it saw and gets the rest,
from get_room_messages or from the room's WebSocket (replay, then live), with no gap
and no duplicate."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from chat_service import store
from chat_service.events import RoomEvents, topic_of
from shared.db import POOL_KEY
from shared.realtime import REALTIME_KEY
from tests.chat_service.helpers import (
    INVALID,
    NOT_FOUND,
    NOT_IN_ROOM,
    call,
    create_room,
    history,
    send,
)

TIMEOUT_S = 10  # an upper bound on delivery, not a pause


async def sent_ids(api: Any, headers: dict[str, str], room_id: int, count: int) -> list[int]:
    ids = []
    for n in range(count):
        status, sent = await send(api, headers, room_id, f"message {n}")
        assert status == 201
        ids.append(sent["message_id"])
    return ids


async def test_history_after_is_the_newer_messages_oldest_first(api, auth):
    room_id = await create_room(api, auth(), "General")
    ids = await sent_ids(api, auth(), room_id, 5)
    status, page = await history(api, auth(), room_id, after=ids[1])
    assert status == 200
    assert [m["message_id"] for m in page["messages"]] == ids[2:]
    assert [m["message"] for m in page["messages"]] == ["message 2", "message 3", "message 4"]
    assert page["next_after"] is None
    assert set(page) == {"messages", "next_after"}
    # Paging on: next_after until it is null.
    status, first = await history(api, auth(), room_id, after=0, limit=2)
    assert [m["message_id"] for m in first["messages"]] == ids[:2]
    assert first["next_after"] == ids[1]
    status, second = await history(api, auth(), room_id, after=first["next_after"], limit=3)
    assert [m["message_id"] for m in second["messages"]] == ids[2:]
    assert second["next_after"] is None
    # Caught up: nothing newer.
    assert await history(api, auth(), room_id, after=ids[-1]) == (
        200,
        {"messages": [], "next_after": None},
    )
    # Each message as the newest-first page shows it.
    status, newest_first = await history(api, auth(), room_id)
    assert list(reversed(newest_first["messages"])) == first["messages"] + second["messages"]


async def test_history_after_refusals(api, auth):
    room_id = await create_room(api, auth("alice"), "General")
    for params in ({"after": "-1"}, {"after": "x"}, {"after": "1", "before": "5"}):
        assert await history(api, auth(), room_id, **params) == (400, INVALID), params
    assert await history(api, auth("bob"), room_id, after=0) == (403, NOT_IN_ROOM)
    assert await history(api, auth(), 999, after=0) == (404, NOT_FOUND)


async def receive_ids(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[int]:
    return [(await ws.receive_json(timeout=TIMEOUT_S))["message_id"] for _ in range(count)]


async def test_the_socket_replays_after_then_goes_live(api, auth):
    room_id = await create_room(api, auth(), "General")
    ids = await sent_ids(api, auth(), room_id, 4)
    async with api.ws_connect(f"/api/rooms/{room_id}/ws?after={ids[0]}", headers=auth()) as ws:
        assert await receive_ids(ws, 3) == ids[1:]
        status, live = await send(api, auth(), room_id, "live")
        assert status == 201
        received = await ws.receive_json(timeout=TIMEOUT_S)
        status, page = await history(api, auth(), room_id, limit=1)
        assert received == page["messages"][0]
        assert received["message_id"] == live["message_id"]


async def test_the_socket_refuses_a_bad_after(api, auth):
    room_id = await create_room(api, auth(), "General")
    path = f"/api/rooms/{room_id}/ws?after=-5"
    assert await call(api, "GET", path, auth()) == (400, INVALID)


async def test_a_message_committed_while_the_socket_opens_arrives_exactly_once(
    service, auth, monkeypatch
):
    """It commits after the socket subscribed and before its replay is read: it is
    both in the replay and on the live stream, and the client gets it once."""
    broadcaster = service.server.app[REALTIME_KEY]
    room_id = await create_room(service, auth(), "General")
    [first] = await sent_ids(service, auth(), room_id, 1)
    checked = store.require_member
    committed: list[int] = []

    async def check_then_send(pool: Any, room: int, username: str) -> None:
        await checked(pool, room, username)
        with broadcaster.subscribe(topic_of(room)) as probe:
            async with pool.acquire() as conn:
                sent = await store.send_message(
                    conn, room, username, "meanwhile", RoomEvents(broadcaster)
                )
            committed.append(sent.message_id)
            # Delivered live to every subscriber of the room, this socket's included.
            async for event in probe:
                if event.get("message_id") == sent.message_id:
                    break

    monkeypatch.setattr(store, "require_member", check_then_send)
    async with service.ws_connect(f"/api/rooms/{room_id}/ws?after=0", headers=auth()) as ws:
        assert await receive_ids(ws, 2) == [first, committed[0]]
        status, later = await send(service, auth(), room_id, "later")
        assert status == 201
        # The live copy of "meanwhile" was dropped: "later" is next.
        assert await receive_ids(ws, 1) == [later["message_id"]]


async def test_a_client_resumes_after_1012_without_losing_what_was_sent_meanwhile(
    service, auth, db
):
    broadcaster = service.server.app[REALTIME_KEY]
    room_id = await create_room(service, auth(), "General")
    path = f"/api/rooms/{room_id}/ws"
    async with service.ws_connect(path, headers=auth()) as ws:
        status, seen = await send(service, auth(), room_id, "seen")
        assert await receive_ids(ws, 1) == [seen["message_id"]]
        assert await db.fetchval("SELECT pg_terminate_backend($1)", broadcaster.listen_pid)
        # Sent while the replica has no LISTEN connection (or just got a new one).
        status, missed = await send(service, auth(), room_id, "sent during the reconnect")
        assert status == 201
        closing = await ws.receive(timeout=TIMEOUT_S)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1012)
    # The client does what 1012 asks: reconnect with the last id it saw.
    async with service.ws_connect(f"{path}?after={seen['message_id']}", headers=auth()) as ws:
        assert await receive_ids(ws, 1) == [missed["message_id"]]
        status, live = await send(service, auth(), room_id, "live again")
        assert await receive_ids(ws, 1) == [live["message_id"]]


async def test_a_rooms_messages_commit_in_id_order(service, auth, db):
    """A message whose transaction is slow to commit keeps the next one waiting, so
    a client that saw id N and asks `after=N` can never miss a smaller id that
    commits later. (The slow one is sent inside a transaction left open, as an
    Idempotency-Key request's is until its answer is stored.)"""
    room_id = await create_room(service, auth(), "General")
    broadcaster = service.server.app[REALTIME_KEY]
    async with service.server.app[POOL_KEY].acquire() as conn:
        slow = conn.transaction()
        await slow.start()
        try:
            await store.send_message(conn, room_id, "alice", "slow", RoomEvents(broadcaster))
            fast = asyncio.ensure_future(send(service, auth(), room_id, "fast"))
            # "fast" either committed already (the bug) or waits on the room's lock.
            async with asyncio.timeout(TIMEOUT_S):
                while not fast.done():
                    waiting = await db.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                    if waiting:
                        break
                    await asyncio.sleep(0.01)
            # What a client reading now sees, and the id it would resume from.
            status, seen = await history(service, auth(), room_id, after=0)
            assert status == 200
            resume_from = max([m["message_id"] for m in seen["messages"]], default=0)
        finally:
            await slow.commit()
    assert (await fast)[0] == 201
    status, rest = await history(service, auth(), room_id, after=resume_from)
    assert status == 200
    got = [m["message"] for m in seen["messages"] + rest["messages"]]
    assert sorted(got) == ["fast", "slow"]
