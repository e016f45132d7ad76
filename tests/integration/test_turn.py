"""The TURN credentials /ice-servers hands out are the ones a real coturn accepts,
checked by coturn itself with the shared secret; expired or forged ones it refuses."""

from __future__ import annotations

import time

import pytest
from aioice import stun

from meeting_service.ice import turn_credential
from tests.conftest import bearer
from tests.meeting_service.conftest import create_room
from tests.turn import allocate, coturn


@pytest.fixture
async def turn():
    async with coturn() as server:
        yield server


@pytest.fixture
async def stack_with_turn(turn, make_stack):
    return await make_stack(turn_urls=turn.url, turn_secret=turn.secret)


async def turn_entry(stack, token, room_id):
    response = await stack.client.get(f"/rooms/{room_id}/ice-servers", headers=bearer(token))
    assert response.status == 200
    (entry,) = (await response.json())["iceServers"]
    return entry


async def test_coturn_accepts_the_credentials_of_ice_servers(turn, stack_with_turn, make_token):
    alice = make_token("alice")
    room = await create_room(stack_with_turn.client, alice)
    entry = await turn_entry(stack_with_turn, alice, room["id"])
    assert entry["urls"] == [turn.url]
    relayed = await allocate(turn.port, entry["username"], entry["credential"])
    assert relayed[0] == "127.0.0.1"


async def test_coturn_refuses_expired_and_forged_credentials(turn, stack_with_turn, make_token):
    alice = make_token("alice")
    room = await create_room(stack_with_turn.client, alice)
    entry = await turn_entry(stack_with_turn, alice, room["id"])
    pid = entry["username"].split(":")[1]
    expired = f"{int(time.time()) - 60}:{pid}"
    attempts = {
        "expired": (expired, turn_credential(turn.secret, expired)),
        "forged": (entry["username"], turn_credential("not the secret", entry["username"])),
        "extended": (f"{int(time.time()) + 10**6}:{pid}", entry["credential"]),
    }
    for name, (username, credential) in attempts.items():
        with pytest.raises(stun.TransactionFailed) as refused:
            await allocate(turn.port, username, credential)
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401, name
