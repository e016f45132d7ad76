"""GET /rooms/{id}/ice-servers: STUN as configured, TURN REST API credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from tests.conftest import bearer
from tests.meeting_service.conftest import create_room, join

TURN = {
    "stun_urls": "stun:stun.example.test:3478, stun:stun2.example.test:3478",
    "turn_urls": "turn:turn.example.test:3478?transport=udp,turns:turn.example.test:5349",
    "turn_secret": "correct horse",
    "turn_ttl_s": 3600,
}


async def ice(client, token, room_id, expect=200):
    response = await client.get(f"/rooms/{room_id}/ice-servers", headers=bearer(token))
    body = await response.json()
    assert response.status == expect, body
    return body


async def test_turn_credentials_in_the_rest_api_convention(make_service, make_token):
    service = await make_service(**TURN)
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(service, alice)
    bob_p = (await join(service, bob, room["code"]))["participant"]
    before = int(time.time())
    body = await ice(service, bob, room["id"])
    after = int(time.time())
    assert set(body) == {"iceServers", "ttl"}
    assert body["ttl"] == 3600
    stun, turn = body["iceServers"]
    assert stun == {"urls": ["stun:stun.example.test:3478", "stun:stun2.example.test:3478"]}
    assert set(turn) == {"urls", "username", "credential"}
    assert turn["urls"] == [
        "turn:turn.example.test:3478?transport=udp",
        "turns:turn.example.test:5349",
    ]
    expiry, pid = turn["username"].split(":")
    assert pid == bob_p["id"]
    assert before + 3600 <= int(expiry) <= after + 3600
    mac = hmac.new(b"correct horse", turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(mac).decode()


async def test_no_turn_entry_without_a_turn_server(make_service, make_token):
    service = await make_service(stun_urls="stun:stun.example.test:3478")
    alice = make_token("alice")
    room = await create_room(service, alice)
    body = await ice(service, alice, room["id"])
    assert body == {"iceServers": [{"urls": ["stun:stun.example.test:3478"]}], "ttl": 86400}
    service = await make_service()
    assert (await ice(service, alice, room["id"]))["iceServers"] == []


async def test_only_joined_participants_get_ice_servers(api, make_token):
    alice, bob, carol = make_token("alice"), make_token("bob"), make_token("carol")
    room = await create_room(api, alice, waitingRoom=True)
    await join(api, bob, room["code"])
    not_in = await ice(api, bob, room["id"], expect=403)
    assert not_in["error"] == "You are not in this room"
    assert (await ice(api, carol, room["id"], expect=403))["error"] == "You are not in this room"
    missing = await ice(api, alice, "cnosuchroom0000000000000", expect=404)
    assert missing["error"] == "Room not found"
    response = await api.get(f"/rooms/{room['id']}/ice-servers")
    assert response.status == 401
    await api.post(f"/rooms/{room['id']}/leave", headers=bearer(alice))
    assert (await ice(api, alice, room["id"], expect=403))["error"] == "You are not in this room"
