"""Real WebRTC peers (aiortc) meet through the gateway: the room socket's snapshot
says whom to call, offers, answers and trickled candidates cross the relay, every
pair reaches `connected` and a data channel carries a message each way."""

from __future__ import annotations

import contextlib

import aiohttp
import pytest

from tests.conftest import bearer
from tests.meeting_service.conftest import create_room, join
from tests.turn import coturn
from tests.webrtc import ice_configuration, mesh_connected, peer

pytestmark = pytest.mark.timeout(240)


def relayed_only(peers):
    """Every candidate each peer connection gathered is a TURN relay address."""
    for one in peers:
        for pc in one.pcs.values():
            local = pc.sctp.transport.transport.iceGatherer.getLocalCandidates()
            assert local
            assert {c.type for c in local} == {"relay"}


async def meet(sockets, urls, tokens, ice=None, relay_only=False):
    """Each person opens the room socket in turn; each newcomer calls those present."""
    async with contextlib.AsyncExitStack() as stack:
        peers = []
        for session, url, token in zip(sockets, urls, tokens, strict=True):
            config = ice_configuration(ice.get(token) if ice else None, relay_only)
            newcomer = await stack.enter_async_context(peer(session, url, bearer(token), config))
            present = newcomer.others_present()
            assert sorted(present) == sorted(p.id for p in peers)
            for other in present:
                await newcomer.call(other)
            peers.append(newcomer)
        await mesh_connected(peers)
        if relay_only:
            relayed_only(peers)
        return peers


@pytest.mark.parametrize("people", [2, 3])
async def test_a_mesh_through_the_gateway(gateway_stack, make_token, people):
    client = gateway_stack.client
    tokens = [make_token(f"user{i}") for i in range(people)]
    room = await create_room(client, tokens[0])
    for token in tokens[1:]:
        await join(client, token, room["code"])
    url = f"/rooms/{room['id']}/ws"
    await meet([client] * people, [url] * people, tokens)


async def test_two_peers_on_two_replicas(
    gateway_stack, aiohttp_server, make_token, database_url, jwks_json
):
    from meeting_service.app import create_app
    from meeting_service.settings import MeetingSettings

    replica_b = await aiohttp_server(
        create_app(MeetingSettings(database_url=database_url, jwks=jwks_json))
    )
    client = gateway_stack.client
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(client, alice)
    await join(client, bob, room["code"])
    path = f"/rooms/{room['id']}/ws"
    async with aiohttp.ClientSession() as direct:
        # Alice through the gateway (to replica A), Bob straight to replica B.
        await meet([client, direct], [path, str(replica_b.make_url(path))], [alice, bob])


async def test_two_peers_relayed_by_coturn_with_ice_servers_credentials(make_stack, make_token):
    async with coturn() as turn:
        stack = await make_stack(
            turn_urls=f"turn:127.0.0.1:{turn.port}?transport=udp", turn_secret=turn.secret
        )
        client = stack.client
        alice, bob = make_token("alice"), make_token("bob")
        room = await create_room(client, alice)
        await join(client, bob, room["code"])
        ice = {}
        for token in (alice, bob):
            response = await client.get(f"/rooms/{room['id']}/ice-servers", headers=bearer(token))
            ice[token] = await response.json()
        path = f"/rooms/{room['id']}/ws"
        await meet([client] * 2, [path] * 2, [alice, bob], ice=ice, relay_only=True)
