"""In-meeting chat: who may read and write, validation, newest-first pages."""

from __future__ import annotations

import pytest

from tests.conftest import bearer
from tests.meeting_service.conftest import ID, TIMESTAMP, create_room, join

MESSAGE_KEYS = {
    "id",
    "roomId",
    "userId",
    "displayName",
    "avatarUrl",
    "isGuest",
    "content",
    "createdAt",
}


async def send(api, token, room_id, content, expect=201):
    response = await api.post(
        f"/rooms/{room_id}/messages", json={"content": content}, headers=bearer(token)
    )
    body = await response.json()
    assert response.status == expect, body
    return body


async def history(api, token, room_id, expect=200, **query):
    response = await api.get(f"/rooms/{room_id}/messages", params=query, headers=bearer(token))
    body = await response.json()
    assert response.status == expect, body
    return body


async def test_send_and_read(api, make_token):
    alice = make_token("alice", name="Alice")
    room = await create_room(api, alice)
    bob = make_token("bob", name="Bob", picture="https://img.example/b.png")
    await join(api, bob, room["code"])
    sent = await send(api, bob, room["id"], "hello")
    assert set(sent) == MESSAGE_KEYS
    assert ID.match(sent["id"])
    assert TIMESTAMP.match(sent["createdAt"])
    assert sent == {
        "id": sent["id"],
        "roomId": room["id"],
        "userId": "u_bob",
        "displayName": "Bob",
        "avatarUrl": "https://img.example/b.png",
        "isGuest": False,
        "content": "hello",
        "createdAt": sent["createdAt"],
    }
    reply = await send(api, alice, room["id"], "hi bob")
    page = await history(api, bob, room["id"])
    assert page == {"messages": [reply, sent], "next_before": None}


async def test_pages_newest_first_with_before(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    sent = [await send(api, alice, room["id"], f"message {i}") for i in range(5)]
    first = await history(api, alice, room["id"], limit="2")
    assert [m["content"] for m in first["messages"]] == ["message 4", "message 3"]
    assert first["next_before"] == sent[3]["id"]
    second = await history(api, alice, room["id"], limit="2", before=first["next_before"])
    assert [m["content"] for m in second["messages"]] == ["message 2", "message 1"]
    third = await history(api, alice, room["id"], limit="2", before=second["next_before"])
    assert third == {"messages": [sent[0]], "next_before": None}


async def test_history_bad_query(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    unknown = await history(api, alice, room["id"], expect=400, before="cnosuchmessage")
    assert unknown == {"error": "before: no such message in this room", "code": "message_not_found"}
    body = await history(api, alice, room["id"], expect=400, limit="0")
    assert body["error"] == "limit: Input should be greater than or equal to 1"


async def test_a_guest_chats(api, make_token):
    room = await create_room(api, make_token("alice"))
    guest = make_token(role="guest", user_id="g_1", name="Visitor")
    await join(api, guest, room["code"])
    sent = await send(api, guest, room["id"], "hi from a guest")
    assert sent["isGuest"] is True
    assert sent["displayName"] == "Visitor"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"content": ""}, "content: String should have at least 1 character"),
        ({"content": "   "}, "content: Value error, must not be blank"),
        ({"content": "x" * 4001}, "content: String should have at most 4000 characters"),
        ({"content": 7}, "content: Input should be a valid string"),
        ({}, "content: Field required"),
        ({"content": "hi", "to": "bob"}, "to: Extra inputs are not permitted"),
    ],
)
async def test_content_validation(api, make_token, body, message):
    alice = make_token("alice")
    room = await create_room(api, alice)
    response = await api.post(f"/rooms/{room['id']}/messages", json=body, headers=bearer(alice))
    assert response.status == 400
    assert (await response.json())["error"] == message


async def test_the_longest_message(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    assert (await send(api, alice, room["id"], "x" * 4000))["content"] == "x" * 4000


async def test_chat_disabled(api, make_token):
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(api, alice)
    await join(api, bob, room["code"])
    await api.patch(
        f"/rooms/{room['id']}/settings", json={"allowChat": False}, headers=bearer(alice)
    )
    disabled = {"error": "Chat is disabled in this room", "code": "chat_disabled"}
    for token in (alice, bob):
        assert await send(api, token, room["id"], "hello", expect=403) == disabled
        assert await history(api, token, room["id"], expect=403) == disabled


async def test_only_those_in_the_room_chat(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice, waitingRoom=True)
    waiting = make_token("bob")
    await join(api, waiting, room["code"])
    outside = {"error": "You are not in this room", "code": "not_in_room"}
    for token in (make_token("mallory"), waiting):
        assert await send(api, token, room["id"], "let me in", expect=403) == outside
        assert await history(api, token, room["id"], expect=403) == outside
    assert await send(api, alice, "cnosuchroom", "hi", expect=404) == {
        "error": "Room not found",
        "code": "room_not_found",
    }
    assert await history(api, alice, "cnosuchroom", expect=404) == {
        "error": "Room not found",
        "code": "room_not_found",
    }


async def test_an_ended_room_keeps_its_history_but_takes_no_messages(api, make_token):
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(api, alice)
    await join(api, bob, room["code"])
    sent = await send(api, bob, room["id"], "bye")
    await api.post(f"/rooms/{room['id']}/end", headers=bearer(alice))
    assert await send(api, alice, room["id"], "late", expect=409) == {
        "error": "Room is no longer active",
        "code": "room_inactive",
    }
    assert await send(api, bob, room["id"], "late", expect=403) == {
        "error": "You are not in this room",
        "code": "not_in_room",
    }
    assert (await history(api, alice, room["id"]))["messages"] == [sent]
