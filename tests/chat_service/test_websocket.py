"""GET /api/rooms/{room_id}/ws: a room's new messages, live, for its members."""

from __future__ import annotations

import aiohttp
import pytest

from chat_service.app import create_app
from tests.chat_service.helpers import (
    NOT_FOUND,
    NOT_IN_ROOM,
    UNAUTHORIZED,
    call,
    create_room,
    history,
    join,
    send,
)

TIMEOUT_S = 10  # an upper bound on delivery, not a pause


async def test_a_member_hears_anothers_message_as_the_history_shows_it(api, auth):
    general = await create_room(api, auth("alice"), "General")
    other = await create_room(api, auth("alice"), "Other")
    await join(api, auth("bob"), "General")
    await join(api, auth("bob"), "Other")
    async with api.ws_connect(f"/api/rooms/{general}/ws", headers=auth("alice")) as ws:
        # A message of another room goes to that room's listeners only.
        assert (await send(api, auth("bob"), other, "elsewhere"))[0] == 201
        status, sent = await send(api, auth("bob"), general, "hello alice")
        assert status == 201
        received = await ws.receive_json(timeout=TIMEOUT_S)
        status, page = await history(api, auth("alice"), general)
        assert page["messages"] == [received]
        assert received == {
            "message_id": sent["message_id"],
            "room_id": general,
            "username": "bob",
            "message": "hello alice",
            "created_at": sent["created_at"],
        }
        status, second = await send(api, auth("alice"), general, "hi bob")
        assert (await ws.receive_json(timeout=TIMEOUT_S))["message_id"] == second["message_id"]


async def test_the_token_may_come_in_the_query(api, auth, make_token):
    room_id = await create_room(api, auth("alice"), "General")
    path = f"/api/rooms/{room_id}/ws?access_token={make_token('alice')}"
    async with api.ws_connect(path) as ws:
        status, sent = await send(api, auth("alice"), room_id, "to myself")
        assert status == 201
        assert (await ws.receive_json(timeout=TIMEOUT_S))["message_id"] == sent["message_id"]


@pytest.mark.parametrize(
    ("who", "room", "status", "body"),
    [
        ("bob", "secret", 403, NOT_IN_ROOM),
        ("bob", "public", 403, NOT_IN_ROOM),
        ("alice", "unknown", 404, NOT_FOUND),
        (None, "public", 401, UNAUTHORIZED),
    ],
)
async def test_refusals(api, auth, who, room, status, body):
    rooms = {
        "secret": await create_room(api, auth("alice"), "Secret", password="pw"),
        "public": await create_room(api, auth("alice"), "Public"),
        "unknown": 999,
    }
    path = f"/api/rooms/{rooms[room]}/ws"
    headers = auth(who) if who else None
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with api.ws_connect(path, headers=headers):
            pass
    assert refused.value.status == status
    # The same refusal, readable, to a plain request.
    assert await call(api, "GET", path, headers) == (status, body)


async def test_the_stream_ends_when_its_user_leaves(api, auth):
    room_id = await create_room(api, auth("alice"), "General")
    await join(api, auth("bob"), "General")
    async with api.ws_connect(f"/api/rooms/{room_id}/ws", headers=auth("alice")) as ws:
        status, before = await send(api, auth("bob"), room_id, "before")
        assert status == 201
        left = await call(api, "POST", "/api/leave_room", auth("alice"), json={"room_id": room_id})
        assert left[0] == 200
        assert (await send(api, auth("bob"), room_id, "after"))[0] == 201
        assert (await ws.receive_json(timeout=TIMEOUT_S))["message_id"] == before["message_id"]
        # The leave comes before "after" on the room's topic, so the stream closes first.
        closing = await ws.receive(timeout=TIMEOUT_S)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        # The code says why (the status a request would get), the reason in words.
        assert closing.data == 4403
        assert closing.extra == "you are not in this room"


async def test_the_stream_ends_when_the_room_is_deleted(api, auth):
    room_id = await create_room(api, auth("alice"), "General")
    await join(api, auth("bob"), "General")
    async with api.ws_connect(f"/api/rooms/{room_id}/ws", headers=auth("bob")) as ws:
        deleted = await call(
            api, "POST", "/api/delete_room", auth("alice"), json={"room_id": room_id}
        )
        assert deleted[0] == 200
        closing = await ws.receive(timeout=TIMEOUT_S)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert closing.data == 4404
        assert closing.extra == "room not found"


async def test_another_members_leaving_does_not_end_the_stream(api, auth):
    room_id = await create_room(api, auth("alice"), "General")
    await join(api, auth("bob"), "General")
    async with api.ws_connect(f"/api/rooms/{room_id}/ws", headers=auth("alice")) as ws:
        left = await call(api, "POST", "/api/leave_room", auth("bob"), json={"room_id": room_id})
        assert left[0] == 200
        status, sent = await send(api, auth("alice"), room_id, "still listening")
        assert status == 201
        assert (await ws.receive_json(timeout=TIMEOUT_S))["message_id"] == sent["message_id"]


async def test_a_message_sent_through_one_replica_reaches_listeners_of_another(
    aiohttp_client, chat_settings, auth
):
    first = await aiohttp_client(create_app(chat_settings))
    second = await aiohttp_client(create_app(chat_settings))
    room_id = await create_room(first, auth("alice"), "General")
    await join(second, auth("bob"), "General")
    async with first.ws_connect(f"/api/rooms/{room_id}/ws", headers=auth("alice")) as ws:
        status, sent = await send(second, auth("bob"), room_id, "across replicas")
        assert status == 201
        received = await ws.receive_json(timeout=TIMEOUT_S)
        assert (received["message_id"], received["message"]) == (
            sent["message_id"],
            "across replicas",
        )
