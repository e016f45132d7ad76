"""GET /rooms/{id}/ws: live room events, filtered per viewer."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import bearer
from tests.meeting_service.conftest import create_room, join
from tests.meeting_service.sockets import closed, ending, next_event


async def test_a_participant_hears_someone_join(api, make_token):
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(api, alice)
    url = f"/rooms/{room['id']}/ws"
    async with api.ws_connect(url, headers=bearer(alice)) as host_ws:
        await join(api, bob, room["code"])
        # Once the host has heard it, Bob's own join is behind us: he connects after.
        assert (await next_event(host_ws))["type"] == "participant.joined"
        async with api.ws_connect(url, headers=bearer(bob)) as ws:
            carol = make_token("carol", name="Carol")
            joined = (await join(api, carol, room["code"]))["participant"]
            assert await next_event(ws) == {
                "type": "participant.joined",
                "roomId": room["id"],
                "participant": joined,
            }


async def test_the_token_may_come_as_a_query_parameter(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    url = f"/rooms/{room['id']}/ws?access_token={alice}"
    async with api.ws_connect(url) as ws:
        bob = (await join(api, make_token("bob"), room["code"]))["participant"]
        event = await next_event(ws)
        assert event["type"] == "participant.joined"
        assert event["participant"] == bob


async def test_room_events_in_order(api, make_token):
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(api, alice)
    async with api.ws_connect(f"/rooms/{room['id']}/ws", headers=bearer(alice)) as ws:
        bob_p = (await join(api, bob, room["code"]))["participant"]
        assert await next_event(ws) == {
            "type": "participant.joined",
            "roomId": room["id"],
            "participant": bob_p,
        }
        response = await api.post(
            f"/rooms/{room['id']}/messages", json={"content": "hello"}, headers=bearer(bob)
        )
        message = await response.json()
        assert await next_event(ws) == {
            "type": "chat.message",
            "roomId": room["id"],
            "message": message,
        }
        response = await api.patch(
            f"/rooms/{room['id']}/settings", json={"isLocked": True}, headers=bearer(alice)
        )
        locked_room = await response.json()
        assert await next_event(ws) == {
            "type": "room.settings_updated",
            "roomId": room["id"],
            "room": locked_room,
        }
        assert await next_event(ws) == {
            "type": "room.locked",
            "roomId": room["id"],
            "room": locked_room,
        }
        await api.post(f"/rooms/{room['id']}/leave", headers=bearer(bob))
        left = await next_event(ws)
        assert left["type"] == "participant.left"
        assert left["participant"] == {**bob_p, "status": "left"}
        assert left["previousStatus"] == "joined"
        response = await api.post(f"/rooms/{room['id']}/end", headers=bearer(alice))
        assert response.status == 200
        ended_room = await response.json()
        # The end is the socket's last frame, then the close with 4410.
        last, message = await ending(ws)
        assert last == {"type": "room.ended", "roomId": room["id"], "room": ended_room}
        assert (message.data, message.extra) == (4410, "room ended")


async def test_the_waiting_room_is_the_hosts_business(api, make_token):
    alice, bob, carol = make_token("alice"), make_token("bob"), make_token("carol")
    room = await create_room(api, alice, waitingRoom=True)
    base = f"/rooms/{room['id']}/participants"
    url = f"/rooms/{room['id']}/ws"
    async with api.ws_connect(url, headers=bearer(alice)) as host_ws:
        bob_p = (await join(api, bob, room["code"]))["participant"]
        await api.post(f"{base}/{bob_p['id']}/admit", headers=bearer(alice))
        assert (await next_event(host_ws))["type"] == "participant.waiting"
        assert (await next_event(host_ws))["type"] == "participant.admitted"
        async with api.ws_connect(url, headers=bearer(bob)) as bob_ws:
            carol_p = (await join(api, carol, room["code"]))["participant"]
            waiting = await next_event(host_ws)
            assert waiting == {
                "type": "participant.waiting",
                "roomId": room["id"],
                "participant": carol_p,
            }
            async with api.ws_connect(url, headers=bearer(carol)) as carol_ws:
                response = await api.post(f"{base}/{carol_p['id']}/admit", headers=bearer(alice))
                admitted_p = await response.json()
                assert admitted_p["status"] == "joined"
                admitted = {
                    "type": "participant.admitted",
                    "roomId": room["id"],
                    "participant": admitted_p,
                }
                assert await next_event(carol_ws) == admitted
                assert await next_event(host_ws) == admitted
                # Bob never heard Carol knock: his first event is her admission.
                assert await next_event(bob_ws) == admitted
                # Carol, now inside, hears the room's chat.
                await api.post(
                    f"/rooms/{room['id']}/messages",
                    json={"content": "welcome"},
                    headers=bearer(bob),
                )
                chat = await next_event(carol_ws)
                assert chat["type"] == "chat.message"
                assert chat["message"]["content"] == "welcome"


async def test_a_waiting_participant_hears_only_about_themselves(api, make_token):
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(api, alice, waitingRoom=True)
    url = f"/rooms/{room['id']}/ws"
    async with api.ws_connect(url, headers=bearer(alice)) as host_ws:
        bob_p = (await join(api, bob, room["code"]))["participant"]
        assert (await next_event(host_ws))["type"] == "participant.waiting"
        async with api.ws_connect(url, headers=bearer(bob)) as ws:
            await join(api, make_token("carol"), room["code"])
            await api.post(
                f"/rooms/{room['id']}/messages", json={"content": "secret"}, headers=bearer(alice)
            )
            await api.post(
                f"/rooms/{room['id']}/participants/{bob_p['id']}/deny", headers=bearer(alice)
            )
            denied = await next_event(ws)
            assert denied["type"] == "participant.denied"
            assert denied["participant"] == {**bob_p, "status": "denied", "connected": True}


async def test_websocket_needs_a_token(api, make_token):
    room = await create_room(api, make_token("alice"))
    response = await api.get(f"/rooms/{room['id']}/ws")
    assert response.status == 401
    assert await response.json() == {"error": "unauthorized", "code": "unauthorized"}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await api.ws_connect(f"/rooms/{room['id']}/ws")
    assert refused.value.status == 401


async def test_websocket_refuses_those_not_in_the_room(api, make_token):
    room = await create_room(api, make_token("alice"))
    mallory = make_token("mallory")
    response = await api.get(f"/rooms/{room['id']}/ws", headers=bearer(mallory))
    assert response.status == 403
    assert await response.json() == {"error": "You are not in this room", "code": "not_in_room"}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await api.ws_connect(f"/rooms/{room['id']}/ws", headers=bearer(mallory))
    assert refused.value.status == 403
    response = await api.get("/rooms/cnosuchroom/ws", headers=bearer(mallory))
    assert response.status == 404
    assert await response.json() == {"error": "Room not found", "code": "room_not_found"}


async def test_leaving_the_waiting_room_is_told_only_to_the_host(api, make_token):
    alice, bob, carol = make_token("alice"), make_token("bob"), make_token("carol")
    room = await create_room(api, alice)
    url = f"/rooms/{room['id']}/ws"
    async with api.ws_connect(url, headers=bearer(alice)) as host_ws:
        await join(api, bob, room["code"])
        assert (await next_event(host_ws))["type"] == "participant.joined"
        async with api.ws_connect(url, headers=bearer(bob)) as bob_ws:
            await api.patch(
                f"/rooms/{room['id']}/settings", json={"waitingRoom": True}, headers=bearer(alice)
            )
            assert (await next_event(host_ws))["type"] == "room.settings_updated"
            assert (await next_event(bob_ws))["type"] == "room.settings_updated"
            carol_p = (await join(api, carol, room["code"]))["participant"]
            await api.post(f"/rooms/{room['id']}/leave", headers=bearer(carol))
            assert (await next_event(host_ws))["type"] == "participant.waiting"
            assert await next_event(host_ws) == {
                "type": "participant.left",
                "roomId": room["id"],
                "participant": {**carol_p, "status": "left"},
                "previousStatus": "waiting",
            }
            await api.post(f"/rooms/{room['id']}/end", headers=bearer(alice))
            # Bob heard neither Carol's knock nor her going: next is the end.
            message = await closed(bob_ws)
            assert message.data == 4410
