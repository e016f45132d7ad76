"""Messages: sending, the newest-first history, who may do either, and persistence."""

from __future__ import annotations

import asyncio
import json
import re

from chat_service.app import create_app
from chat_service.events import CHANNEL, topic_of
from chat_service.models import MessageSent
from shared.bodies import json_model
from shared.timefmt import iso_ms
from tests.chat_service.helpers import (
    INVALID,
    NOT_FOUND,
    NOT_IN_ROOM,
    call,
    create_room,
    history,
    join,
    send,
)

TIMEOUT_S = 10  # an upper bound on delivery, not a pause
ISO_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


async def test_send_and_read_back(api, auth, db):
    room_id = await create_room(api, auth("alice"), "General")
    await join(api, auth("bob"), "General")
    status, sent = await send(api, auth("bob"), room_id, "hello, world 👋")
    assert status == 201
    assert sent == {
        "message": "sent",
        "message_id": sent["message_id"],
        "created_at": sent["created_at"],
    }
    assert re.match(ISO_MS, sent["created_at"])
    stored = await db.fetchrow("SELECT * FROM chat.room_messages")
    assert (stored["id"], stored["username"], stored["body"]) == (
        sent["message_id"],
        "bob",
        "hello, world 👋",
    )

    assert await history(api, auth("alice"), room_id) == (
        200,
        {
            "messages": [
                {
                    "message_id": sent["message_id"],
                    "room_id": room_id,
                    "username": "bob",
                    "message": "hello, world 👋",
                    "created_at": sent["created_at"],
                }
            ],
            "next_before": None,
        },
    )


async def test_the_answer_to_a_send_is_its_model_written_by_the_database(api, auth, db):
    """The statement writes MessageSent's JSON (shared.sql_json): the very bytes,
    headers and status the model's own serialization is answered with."""
    room_id = await create_room(api, auth("alice"), "General")
    body = {"room_id": room_id, "message": "hello"}
    async with api.post("/api/send_room_message", headers=auth("alice"), json=body) as response:
        assert response.status == 201
        raw = await response.read()
        content_type = response.headers["Content-Type"]
    stored = await db.fetchrow("SELECT id, created_at FROM chat.room_messages")
    sent = MessageSent(
        message="sent", message_id=stored["id"], created_at=iso_ms(stored["created_at"])
    )
    expected = json_model(sent, 201)
    assert raw == expected.body
    assert content_type == expected.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_history_pages_newest_first(api, auth):
    room_id = await create_room(api, auth("alice"), "General")
    ids = []
    for n in range(7):
        status, sent = await send(api, auth("alice"), room_id, f"message {n}")
        assert status == 201
        ids.append(sent["message_id"])
    assert ids == sorted(ids)

    status, page = await history(api, auth("alice"), room_id, limit=3)
    assert status == 200
    assert [m["message"] for m in page["messages"]] == ["message 6", "message 5", "message 4"]
    assert page["next_before"] == ids[4]
    status, page = await history(api, auth("alice"), room_id, limit=3, before=page["next_before"])
    assert [m["message_id"] for m in page["messages"]] == [ids[3], ids[2], ids[1]]
    status, page = await history(api, auth("alice"), room_id, limit=3, before=page["next_before"])
    assert ([m["message_id"] for m in page["messages"]], page["next_before"]) == ([ids[0]], None)
    # Exactly a page left: no further page is promised.
    status, page = await history(api, auth("alice"), room_id, limit=2, before=ids[2])
    assert ([m["message_id"] for m in page["messages"]], page["next_before"]) == (
        [ids[1], ids[0]],
        None,
    )
    status, page = await history(api, auth("alice"), room_id)
    assert (len(page["messages"]), page["next_before"]) == (7, None)
    assert await history(api, auth("alice"), room_id, before=ids[0]) == (
        200,
        {"messages": [], "next_before": None},
    )


async def test_the_default_page_is_fifty(api, auth, db):
    room_id = await create_room(api, auth("alice"), "General")
    await db.execute(
        "INSERT INTO chat.room_messages (room_id, username, body)"
        " SELECT $1, 'alice', 'm' || n FROM generate_series(1, 120) AS n",
        room_id,
    )
    status, page = await history(api, auth("alice"), room_id)
    assert (status, len(page["messages"]), page["messages"][0]["message"]) == (200, 50, "m120")
    status, page = await history(api, auth("alice"), room_id, limit=100, before=page["next_before"])
    assert (len(page["messages"]), page["messages"][-1]["message"]) == (70, "m1")
    assert page["next_before"] is None


async def test_only_members_send_and_read(api, auth, db):
    room_id = await create_room(api, auth("alice"), "General")
    assert await send(api, auth("bob"), room_id, "hi") == (403, NOT_IN_ROOM)
    assert await history(api, auth("bob"), room_id) == (403, NOT_IN_ROOM)
    await join(api, auth("bob"), "General")
    assert (await send(api, auth("bob"), room_id, "hi"))[0] == 201
    await call(api, "POST", "/api/leave_room", auth("bob"), json={"room_id": room_id})
    assert await send(api, auth("bob"), room_id, "still here?") == (403, NOT_IN_ROOM)
    assert await history(api, auth("bob"), room_id) == (403, NOT_IN_ROOM)
    assert await db.fetchval("SELECT count(*) FROM chat.room_messages") == 1


async def test_one_private_rooms_member_cannot_see_into_another(api, auth):
    first = await create_room(api, auth("alice"), "First", password="one")
    second = await create_room(api, auth("bob"), "Second", password="two")
    assert (await send(api, auth("bob"), second, "bob's secret"))[0] == 201
    assert await history(api, auth("alice"), second) == (403, NOT_IN_ROOM)
    assert await send(api, auth("alice"), second, "let me in") == (403, NOT_IN_ROOM)
    assert await call(api, "GET", f"/api/room_members/{second}", auth("alice")) == (
        403,
        NOT_IN_ROOM,
    )
    assert await history(api, auth("bob"), first) == (403, NOT_IN_ROOM)


async def test_unknown_room(api, auth):
    assert await send(api, auth(), 4242, "hi") == (404, NOT_FOUND)
    assert await history(api, auth(), 4242) == (404, NOT_FOUND)


async def test_only_a_stored_message_is_announced_and_as_publish_would(api, auth, db):
    """The send is one statement that stores and notifies: each refusal stores
    nothing and notifies nothing, and the notification a message gets is the payload
    shared.realtime's publish sends for it."""
    heard: asyncio.Queue[str] = asyncio.Queue()
    await db.add_listener(CHANNEL, lambda *args: heard.put_nowait(args[-1]))
    room_id = await create_room(api, auth("alice"), "General")
    assert await send(api, auth("bob"), room_id, "not a member") == (403, NOT_IN_ROOM)
    assert await send(api, auth("bob"), room_id + 1, "no such room") == (404, NOT_FOUND)
    assert await db.fetchval("SELECT count(*) FROM chat.room_messages") == 0
    status, sent = await send(api, auth("alice"), room_id, "hello")
    assert status == 201
    # Notifications arrive in commit order: had a refusal sent one, it would be first.
    payload = await asyncio.wait_for(heard.get(), TIMEOUT_S)
    assert json.loads(payload) == {
        "topic": topic_of(room_id),
        "event": {"message_id": sent["message_id"]},
    }
    assert await db.fetchval("SELECT count(*) FROM chat.room_messages") == 1


async def test_send_invalid_fields(api, auth, db):
    room_id = await create_room(api, auth(), "r")
    for template in [
        {},
        {"room_id": "ROOM"},
        {"message": "hi"},
        {"room_id": "ROOM", "message": ""},
        {"room_id": "ROOM", "message": "   \n"},
        {"room_id": "ROOM", "message": "x" * 4001},
        {"room_id": "ROOM", "message": 5},
        {"room_id": "ROOM", "message": None},
        {"room_id": "ROOM", "message": "nul \u0000"},
        {"room_id": "1", "message": "hi"},
        {"room_id": 0, "message": "hi"},
        {"room_id": True, "message": "hi"},
    ]:
        body = {key: room_id if value == "ROOM" else value for key, value in template.items()}
        answer = await call(api, "POST", "/api/send_room_message", auth(), json=body)
        assert answer == (400, INVALID), body
    assert await db.fetchval("SELECT count(*) FROM chat.room_messages") == 0


async def test_send_limits_count_characters(api, auth):
    room_id = await create_room(api, auth(), "r")
    assert (await send(api, auth(), room_id, "é" * 4000))[0] == 201
    assert (await send(api, auth(), room_id, "x"))[0] == 201
    assert await send(api, auth(), room_id, "😀" * 4001) == (400, INVALID)


async def test_a_lone_surrogate_is_refused_not_a_crash(api, auth):
    room_id = await create_room(api, auth(), "r")
    raw = b'{"room_id": %d, "message": "\\ud800"}' % room_id
    headers = {**auth(), "Content-Type": "application/json"}
    assert await call(api, "POST", "/api/send_room_message", headers, data=raw) == (400, INVALID)


async def test_history_invalid_query(api, auth):
    room_id = await create_room(api, auth(), "r")
    for template in [
        {},
        {"room_id": "x"},
        {"room_id": "0"},
        {"room_id": str(2**63)},
        {"room_id": "ROOM", "limit": "0"},
        {"room_id": "ROOM", "limit": "101"},
        {"room_id": "ROOM", "limit": "ten"},
        {"room_id": "ROOM", "before": "0"},
        {"room_id": "ROOM", "before": "x"},
    ]:
        params = {
            key: str(room_id) if value == "ROOM" else value for key, value in template.items()
        }
        answer = await call(api, "GET", "/api/get_room_messages", auth(), params=params)
        assert answer == (400, INVALID), params


async def test_messages_survive_a_restart(aiohttp_client, chat_settings, auth):
    first = await aiohttp_client(create_app(chat_settings))
    room_id = await create_room(first, auth(), "General")
    status, sent = await send(first, auth(), room_id, "remember me")
    assert status == 201
    await first.close()

    second = await aiohttp_client(create_app(chat_settings))
    status, page = await history(second, auth(), room_id)
    assert status == 200
    assert page["messages"] == [
        {
            "message_id": sent["message_id"],
            "room_id": room_id,
            "username": "alice",
            "message": "remember me",
            "created_at": sent["created_at"],
        }
    ]
