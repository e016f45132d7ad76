"""The room WebSocket, two-way: the snapshot, signals, media and hand frames, refusals."""

from __future__ import annotations

import aiohttp

from shared.error_codes import code_of
from tests.conftest import bearer
from tests.meeting_service.conftest import create_room, join
from tests.meeting_service.sockets import (
    closed,
    next_of_type,
    room_socket,
    until_type,
)

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}


async def two_in_a_room(api, make_token, **room):
    alice, bob = make_token("alice"), make_token("bob")
    created = await create_room(api, alice, **room)
    bob_p = (await join(api, bob, created["code"]))["participant"]
    return created, alice, bob, bob_p


async def test_the_first_frame_is_the_snapshot(api, make_token):
    alice, bob, carol = make_token("alice"), make_token("bob"), make_token("carol")
    room = await create_room(api, alice, waitingRoom=True)
    bob_p = (await join(api, bob, room["code"]))["participant"]
    carol_p = (await join(api, carol, room["code"]))["participant"]
    await api.post(f"/rooms/{room['id']}/participants/{bob_p['id']}/admit", headers=bearer(alice))
    async with room_socket(api, room["id"], alice) as (_, host_view):
        assert set(host_view) == {"type", "self", "room", "participants"}
        assert host_view["self"]["userId"] == "u_alice"
        assert host_view["self"]["connected"] is True
        assert host_view["room"]["id"] == room["id"]
        assert host_view["room"]["endedAt"] is None
        # The host sees the waiting room too.
        # Host first, then by joining time (Bob's counts from his admission).
        assert [p["userId"] for p in host_view["participants"]] == ["u_alice", "u_carol", "u_bob"]
        async with room_socket(api, room["id"], bob) as (_, bob_view):
            assert bob_view["self"]["id"] == bob_p["id"]
            assert [p["userId"] for p in bob_view["participants"]] == ["u_alice", "u_bob"]
            assert [p["connected"] for p in bob_view["participants"]] == [True, True]
        async with room_socket(api, room["id"], carol) as (_, carol_view):
            # Waiting: only herself.
            assert carol_view["self"]["id"] == carol_p["id"]
            assert carol_view["self"]["status"] == "waiting"
            assert carol_view["participants"] == []


async def test_a_signal_reaches_every_socket_of_its_recipient_unchanged(api, make_token):
    room, alice, bob, bob_p = await two_in_a_room(api, make_token)
    carol = make_token("carol")
    await join(api, carol, room["code"])
    async with (
        room_socket(api, room["id"], alice) as (alice_ws, alice_view),
        room_socket(api, room["id"], bob) as (bob_ws, _),
        room_socket(api, room["id"], bob) as (bob_ws2, _),
        room_socket(api, room["id"], carol) as (carol_ws, _),
    ):
        alice_id = alice_view["self"]["id"]
        frame = {"type": "signal", "to": bob_p["id"], "kind": "offer", "data": OFFER}
        await alice_ws.send_json(frame)
        expected = {"type": "signal", "from": alice_id, "kind": "offer", "data": OFFER}
        assert await next_of_type(bob_ws, "signal") == expected
        assert await next_of_type(bob_ws2, "signal") == expected
        # Carol is not its recipient: she hears Alice's hand, and no signal before it.
        await alice_ws.send_json({"type": "hand", "raised": True})
        heard = await until_type(carol_ws, "participant.hand")
        assert [f for f in heard if f["type"] == "signal"] == []
        assert [
            f for f in await until_type(alice_ws, "participant.hand") if f["type"] == "signal"
        ] == []


async def test_a_signal_larger_than_a_notification_travels_through_the_table(api, make_token, db):
    room, alice, bob, bob_p = await two_in_a_room(api, make_token)
    # An SDP with many candidates: over NOTIFY's 8000 bytes, under the 64 KiB limit.
    lines = "".join(
        f"a=candidate:{i} 1 udp 2122260223 10.0.0.{i % 250} 5{i:04d} typ host\r\n"
        for i in range(700)
    )
    big = {"type": "offer", "sdp": "v=0\r\n" + lines}
    async with (
        room_socket(api, room["id"], alice) as (alice_ws, alice_view),
        room_socket(api, room["id"], bob) as (bob_ws, _),
    ):
        await alice_ws.send_json(
            {"type": "signal", "to": bob_p["id"], "kind": "offer", "data": big}
        )
        got = await next_of_type(bob_ws, "signal")
        assert got == {
            "type": "signal",
            "from": alice_view["self"]["id"],
            "kind": "offer",
            "data": big,
        }
    stored = await db.fetchrow("SELECT sender_id, recipient_id, kind FROM meeting.signals")
    assert dict(stored) == {
        "sender_id": alice_view["self"]["id"],
        "recipient_id": bob_p["id"],
        "kind": "offer",
    }


async def test_media_and_hand_frames_are_stored_and_told_to_everyone_joined(api, make_token, db):
    room, alice, bob, bob_p = await two_in_a_room(api, make_token)
    async with (
        room_socket(api, room["id"], alice) as (alice_ws, _),
        room_socket(api, room["id"], bob) as (bob_ws, _),
    ):
        await bob_ws.send_json({"type": "media", "video": False})
        for ws in (alice_ws, bob_ws):
            event = await next_of_type(ws, "participant.media")
            assert event["type"] == "participant.media"
            assert event["roomId"] == room["id"]
            assert event["participant"]["id"] == bob_p["id"]
            assert event["participant"]["media"] == {"audio": True, "video": False, "screen": False}
        await bob_ws.send_json({"type": "hand", "raised": True})
        for ws in (alice_ws, bob_ws):
            event = await next_of_type(ws, "participant.hand")
            assert event["type"] == "participant.hand"
            assert event["participant"]["handRaised"] is True
    stored = await db.fetchrow(
        "SELECT audio, video, screen, hand_raised FROM meeting.participants WHERE id = $1",
        bob_p["id"],
    )
    assert dict(stored) == {"audio": True, "video": False, "screen": False, "hand_raised": True}


async def refused(ws, frame, error, ref=None):
    """Send `frame` (a dict, or raw text) and expect exactly this error frame."""
    if isinstance(frame, str):
        await ws.send_str(frame)
    else:
        await ws.send_json(frame)
    expected = {"type": "error", "error": error, "code": code_of(400, error)}
    if ref is not None:
        expected["ref"] = ref
    assert await next_of_type(ws, "error") == expected


STILL_OPEN = {"type": "hand", "raised": True}


async def still_open(ws):
    await ws.send_json(STILL_OPEN)
    assert (await next_of_type(ws, "participant.hand"))["participant"]["handRaised"] is True


async def test_invalid_frames_are_refused_and_leave_the_socket_open(api, make_token):
    room, alice, _bob, bob_p = await two_in_a_room(api, make_token)
    async with room_socket(api, room["id"], alice) as (ws, _):
        await refused(ws, "not json", "Invalid message")
        await refused(ws, "[1, 2]", "Invalid message")
        await refused(ws, {"type": "dance", "ref": "r1"}, "Invalid message", "r1")
        await refused(
            ws,
            {"type": "signal", "to": bob_p["id"], "kind": "shout", "data": {}, "ref": 7},
            "Invalid message",
            7,
        )
        await refused(
            ws,
            {"type": "signal", "to": bob_p["id"], "kind": "offer", "data": "x"},
            "Invalid message",
        )
        await refused(ws, {"type": "media", "audio": "yes", "ref": "m"}, "Invalid message", "m")
        await refused(ws, {"type": "media"}, "Invalid message")
        await refused(ws, {"type": "hand"}, "Invalid message")
        await ws.send_bytes(b"\x00\x01")
        assert await next_of_type(ws, "error") == {
            "type": "error",
            "error": "Invalid message",
            "code": "invalid_message",
        }
        await still_open(ws)


async def test_a_signal_to_anyone_but_a_joined_participant_is_refused(api, make_token):
    room, alice, _bob, bob_p = await two_in_a_room(api, make_token, waitingRoom=True)
    other_room = await create_room(api, make_token("dave"))
    async with room_socket(api, room["id"], alice) as (ws, _):
        # Bob is only waiting: not a participant one can signal.
        await refused(
            ws,
            {"type": "signal", "to": bob_p["id"], "kind": "offer", "data": OFFER, "ref": "s"},
            "Participant not found",
            "s",
        )
        await refused(
            ws,
            {"type": "signal", "to": "cnosuchparticipant000000", "kind": "offer", "data": OFFER},
            "Participant not found",
        )
        response = await api.get(
            f"/rooms/{other_room['id']}/participants", headers=bearer(make_token("dave"))
        )
        dave_id = (await response.json())["participants"][0]["id"]
        # Joined, but in another room.
        await refused(
            ws,
            {"type": "signal", "to": dave_id, "kind": "offer", "data": OFFER},
            "Participant not found",
        )
        await still_open(ws)


async def test_signal_data_up_to_64_kib_and_no_more(api, make_token):
    room, alice, bob, bob_p = await two_in_a_room(api, make_token)
    envelope = len('{"sdp":""}')
    exactly = {"sdp": "x" * (64 * 1024 - envelope)}
    async with (
        room_socket(api, room["id"], alice) as (ws, _),
        room_socket(api, room["id"], bob) as (bob_ws, _),
    ):
        await refused(
            ws,
            {"type": "signal", "to": bob_p["id"], "kind": "offer", "data": {**exactly, "x": 1}},
            "Signal data is larger than 65536 bytes",
        )
        await ws.send_json({"type": "signal", "to": bob_p["id"], "kind": "offer", "data": exactly})
        assert (await next_of_type(bob_ws, "signal"))["data"] == exactly
        await still_open(ws)


async def test_a_waiting_participant_can_neither_send_nor_receive_signals(api, make_token):
    room, alice, bob, bob_p = await two_in_a_room(api, make_token, waitingRoom=True)
    async with (
        room_socket(api, room["id"], alice) as (alice_ws, alice_view),
        room_socket(api, room["id"], bob) as (bob_ws, _),
    ):
        alice_id = alice_view["self"]["id"]
        await refused(
            bob_ws,
            {"type": "signal", "to": alice_id, "kind": "offer", "data": OFFER, "ref": 1},
            "You are not in this room",
            1,
        )
        await refused(bob_ws, {"type": "media", "audio": False}, "You are not in this room")
        await refused(bob_ws, {"type": "hand", "raised": True}, "You are not in this room")
        await refused(
            alice_ws,
            {"type": "signal", "to": bob_p["id"], "kind": "offer", "data": OFFER},
            "Participant not found",
        )


async def test_too_many_frames_are_refused_and_persistent_abuse_closes_with_1008(
    make_service, make_token
):
    service = await make_service(
        socket_frame_rate=0.001, socket_frame_burst=3, socket_abuse_limit=2
    )
    alice = make_token("alice")
    room = await create_room(service, alice)
    async with room_socket(service, room["id"], alice) as (ws, _):
        for _ in range(3):
            await ws.send_json({"type": "hand", "raised": True})
            assert (await next_of_type(ws, "participant.hand"))["type"] == "participant.hand"
        await refused(ws, {"type": "hand", "raised": False, "ref": "x"}, "Too many messages", "x")
        await refused(ws, {"type": "hand", "raised": False}, "Too many messages")
        await ws.send_json({"type": "hand", "raised": False})
        message = await closed(ws)
        assert message.data == aiohttp.WSCloseCode.POLICY_VIOLATION
