"""The rules the server enforces on media: screen sharing, the host's mute, and the
cut-off of whoever leaves, is removed, or whose room ends."""

from __future__ import annotations

import asyncio

import aiohttp

from meeting_service import presence_store
from tests.conftest import bearer
from tests.meeting_service.conftest import create_room, join
from tests.meeting_service.sockets import (
    closed,
    ending,
    next_event,
    next_of_type,
    room_socket,
    wait_for,
)

OFFER = {"type": "offer", "sdp": "v=0\r\n"}
SCREEN_OFF = "Screen sharing is disabled in this room"


async def setup(api, make_token, **room):
    alice, bob = make_token("alice"), make_token("bob")
    created = await create_room(api, alice, **room)
    bob_p = (await join(api, bob, created["code"]))["participant"]
    return created, alice, bob, bob_p


async def patch(api, token, room_id, **changes):
    response = await api.patch(f"/rooms/{room_id}/settings", json=changes, headers=bearer(token))
    assert response.status == 200, await response.text()


def about(pid):
    return lambda e: e.get("participant", {}).get("id") == pid and e["type"] == "participant.media"


async def test_non_hosts_cannot_share_their_screen_when_it_is_off(api, make_token, db):
    room, alice, bob, bob_p = await setup(api, make_token)
    await patch(api, alice, room["id"], allowScreenShare=False)
    async with (
        room_socket(api, room["id"], alice) as (alice_ws, alice_view),
        room_socket(api, room["id"], bob) as (bob_ws, _),
    ):
        await bob_ws.send_json({"type": "media", "screen": True, "ref": "share"})
        assert await next_of_type(bob_ws, "error") == {
            "type": "error",
            "error": SCREEN_OFF,
            "code": "screen_share_disabled",
            "ref": "share",
        }
        screen = await db.fetchval(
            "SELECT screen FROM meeting.participants WHERE id = $1", bob_p["id"]
        )
        assert screen is False
        # The host may share; anyone may stop sharing or change the rest.
        await alice_ws.send_json({"type": "media", "screen": True})
        event = await wait_for(bob_ws, about(alice_view["self"]["id"]))
        assert event["participant"]["media"]["screen"] is True
        await bob_ws.send_json({"type": "media", "screen": False, "audio": False})
        event = await wait_for(alice_ws, about(bob_p["id"]))
        assert event["participant"]["media"] == {"audio": False, "video": True, "screen": False}


async def test_turning_screen_sharing_off_stops_those_sharing(api, make_token, db):
    room, alice, bob, bob_p = await setup(api, make_token)
    async with (
        room_socket(api, room["id"], alice) as (alice_ws, alice_view),
        room_socket(api, room["id"], bob) as (bob_ws, _),
    ):
        alice_id = alice_view["self"]["id"]
        for ws, pid in ((bob_ws, bob_p["id"]), (alice_ws, alice_id)):
            await ws.send_json({"type": "media", "screen": True})
            shared = await wait_for(bob_ws, about(pid))
            assert shared["participant"]["media"]["screen"] is True
        await patch(api, alice, room["id"], allowScreenShare=False)
        assert (await next_event(bob_ws))["type"] == "room.settings_updated"
        stopped = await next_event(bob_ws)
        assert stopped["type"] == "participant.media"
        assert stopped["participant"]["id"] == bob_p["id"]
        assert stopped["participant"]["media"]["screen"] is False
    rows = await db.fetch("SELECT id, screen FROM meeting.participants ORDER BY is_host")
    # The host goes on sharing.
    assert {row["id"]: row["screen"] for row in rows} == {bob_p["id"]: False, alice_id: True}


async def test_the_host_mutes_anyone_and_they_may_unmute_themselves(api, make_token, db):
    room, alice, bob, bob_p = await setup(api, make_token)
    url = f"/rooms/{room['id']}/participants/{bob_p['id']}/mute"
    async with room_socket(api, room["id"], bob) as (bob_ws, _):
        response = await api.post(url, headers=bearer(alice))
        assert response.status == 200
        muted = await response.json()
        assert muted["id"] == bob_p["id"]
        assert muted["media"] == {"audio": False, "video": True, "screen": False}
        event = await wait_for(bob_ws, about(bob_p["id"]))
        assert event["participant"]["media"]["audio"] is False
        assert (
            await db.fetchval("SELECT audio FROM meeting.participants WHERE id = $1", bob_p["id"])
            is False
        )
        await bob_ws.send_json({"type": "media", "audio": True})
        event = await wait_for(bob_ws, about(bob_p["id"]))
        assert event["participant"]["media"]["audio"] is True


async def test_only_the_host_mutes(api, make_token):
    room, alice, bob, bob_p = await setup(api, make_token)
    host_id = (
        await (await api.get(f"/rooms/{room['id']}/participants", headers=bearer(alice))).json()
    )["participants"][0]["id"]
    response = await api.post(
        f"/rooms/{room['id']}/participants/{host_id}/mute", headers=bearer(bob)
    )
    assert response.status == 403
    body = await response.json()
    assert body["error"] == "Only the host can mute participants"
    response = await api.post(
        f"/rooms/{room['id']}/participants/cnosuchparticipant000000/mute", headers=bearer(alice)
    )
    assert response.status == 404
    assert (await response.json())["error"] == "Participant not found"
    response = await api.post(
        f"/rooms/cnosuchroom0000000000000/participants/{bob_p['id']}/mute", headers=bearer(alice)
    )
    assert response.status == 404
    assert (await response.json())["error"] == "Room not found"
    response = await api.post(f"/rooms/{room['id']}/participants/{bob_p['id']}/mute")
    assert response.status == 401


async def test_leaving_closes_the_sockets_and_stops_signals(api, make_token):
    room, alice, bob, bob_p = await setup(api, make_token)
    async with (
        room_socket(api, room["id"], alice) as (alice_ws, _),
        room_socket(api, room["id"], bob) as (bob_ws, _),
    ):
        await api.post(f"/rooms/{room['id']}/leave", headers=bearer(bob))
        message = await closed(bob_ws)
        assert (message.data, message.extra) == (1000, "left")
        await alice_ws.send_json(
            {"type": "signal", "to": bob_p["id"], "kind": "offer", "data": OFFER}
        )
        refusal = await next_of_type(alice_ws, "error")
        assert refusal["error"] == "Participant not found"


async def test_a_removed_participant_is_closed_with_4403(api, make_token):
    room, alice, bob, bob_p = await setup(api, make_token)
    async with room_socket(api, room["id"], bob) as (bob_ws, _):
        response = await api.delete(
            f"/rooms/{room['id']}/participants/{bob_p['id']}", headers=bearer(alice)
        )
        assert response.status == 204
        # Told why (the removal, about bob), then closed with 4403.
        last, message = await ending(bob_ws)
        assert last["type"] == "participant.removed"
        assert last["participant"]["id"] == bob_p["id"]
        assert last["participant"]["status"] == "removed"
        assert (message.data, message.extra) == (4403, "removed")


async def test_the_end_of_the_room_closes_every_socket_with_4410(api, make_token):
    room, alice, bob, _ = await setup(api, make_token)
    async with (
        room_socket(api, room["id"], alice) as (alice_ws, _),
        room_socket(api, room["id"], bob) as (bob_ws, _),
    ):
        response = await api.post(f"/rooms/{room['id']}/end", headers=bearer(alice))
        assert response.status == 200
        ended_room = await response.json()
        for ws in (alice_ws, bob_ws):
            last, message = await ending(ws)
            assert last == {"type": "room.ended", "roomId": room["id"], "room": ended_room}
            assert (message.data, message.extra) == (4410, "room ended")


async def test_a_removal_racing_the_socket_setup_is_never_missed(api, make_token):
    """Subscribe first, then authorize: whichever commits first, a removed
    participant's socket is refused (403) or closed with 4403, never left open."""
    alice = make_token("alice")
    room = await create_room(api, alice, maxParticipants=30)
    for i in range(12):
        token = make_token(f"user{i}")
        pid = (await join(api, token, room["code"]))["participant"]["id"]

        async def connect(token=token):
            try:
                async with api.ws_connect(f"/rooms/{room['id']}/ws", headers=bearer(token)) as ws:
                    message = await closed(ws)
                    return message.data
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status

        async def remove(pid=pid):
            response = await api.delete(
                f"/rooms/{room['id']}/participants/{pid}", headers=bearer(alice)
            )
            assert response.status == 204

        outcome, _ = await asyncio.gather(connect(), remove())
        assert outcome in (403, 4403)


async def test_a_removal_committed_right_after_the_authorization_is_not_missed(
    api, make_token, monkeypatch
):
    """The removal commits after the socket was authorized and before the client
    saw the handshake: the socket was subscribed first, so it still hears it."""
    room, alice, bob, bob_p = await setup(api, make_token)
    authorize = presence_store.open_socket

    async def authorize_then_removed(*args, **kwargs):
        opened = await authorize(*args, **kwargs)
        response = await api.delete(
            f"/rooms/{room['id']}/participants/{bob_p['id']}", headers=bearer(alice)
        )
        assert response.status == 204
        return opened

    monkeypatch.setattr(presence_store, "open_socket", authorize_then_removed)
    async with room_socket(api, room["id"], bob) as (bob_ws, snapshot):
        assert snapshot["self"]["status"] == "joined"
        message = await closed(bob_ws)
        assert (message.data, message.extra) == (4403, "removed")
