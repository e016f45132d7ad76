"""Presence and signals across replicas: connected while a socket is open anywhere,
told on the first open and the last close, and a killed replica's sockets purged."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import aiohttp

from tests.conftest import bearer
from tests.meeting_service.conftest import create_room, join
from tests.meeting_service.replicas import meeting_process
from tests.meeting_service.sockets import (
    closed,
    next_event,
    next_of_type,
    room_socket,
    until_type,
    wait_for,
)

OFFER = {"type": "offer", "sdp": "v=0\r\n"}
# Bob's join committed before the sockets subscribed, but its notification may
# still be on its way: it may come first, and is not what these tests look at.
LATE = frozenset({"participant.joined"})


async def connected_flags(client, token, room_id, base=""):
    response = await client.get(f"{base}/rooms/{room_id}/participants", headers=bearer(token))
    assert response.status == 200
    return {p["userId"]: p["connected"] for p in (await response.json())["participants"]}


async def test_connected_is_told_on_the_first_open_and_the_last_close(api, make_token):
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(api, alice)
    bob_p = (await join(api, bob, room["code"]))["participant"]
    assert await connected_flags(api, alice, room["id"]) == {"u_alice": False, "u_bob": False}
    async with room_socket(api, room["id"], alice) as (alice_ws, _):
        first = await next_event(alice_ws, skip=LATE)
        assert first["type"] == "participant.connected"
        assert first["participant"]["userId"] == "u_alice"
        async with room_socket(api, room["id"], bob) as (bob_ws, _):
            event = await next_event(alice_ws, skip=LATE)
            assert event["type"] == "participant.connected"
            assert event["participant"] == {**bob_p, "connected": True}
            assert await connected_flags(api, alice, room["id"]) == {
                "u_alice": True,
                "u_bob": True,
            }
            async with room_socket(api, room["id"], bob):
                # A second socket is no news: Alice's next event is Bob's hand.
                await bob_ws.send_json({"type": "hand", "raised": True})
                assert (await next_event(alice_ws, skip=LATE))["type"] == "participant.hand"
            # Closing one of two is no news either.
            await bob_ws.send_json({"type": "hand", "raised": False})
            assert (await next_event(alice_ws, skip=LATE))["type"] == "participant.hand"
            assert (await connected_flags(api, alice, room["id"]))["u_bob"] is True
        gone = await next_event(alice_ws, skip=LATE)
        assert gone["type"] == "participant.disconnected"
        assert gone["participant"]["id"] == bob_p["id"]
        assert gone["participant"]["connected"] is False
        assert await connected_flags(api, alice, room["id"]) == {"u_alice": True, "u_bob": False}


async def test_signals_and_presence_cross_replicas(make_service, make_token, db):
    replica_a, replica_b = await make_service(), await make_service()
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(replica_a, alice)
    bob_p = (await join(replica_b, bob, room["code"]))["participant"]
    async with room_socket(replica_a, room["id"], alice) as (alice_ws, alice_view):
        alice_id = alice_view["self"]["id"]
        async with room_socket(replica_b, room["id"], bob) as (bob_ws, _):
            joined = await wait_for(
                alice_ws,
                lambda e: (
                    e["type"] == "participant.connected" and e["participant"]["id"] == bob_p["id"]
                ),
            )
            assert joined["type"] == "participant.connected"
            # Small signals ride in the notification, large ones through the table.
            big = {"type": "offer", "sdp": "a=x\r\n" * 5000}
            for data in (OFFER, big):
                await alice_ws.send_json(
                    {"type": "signal", "to": bob_p["id"], "kind": "offer", "data": data}
                )
                assert await next_of_type(bob_ws, "signal") == {
                    "type": "signal",
                    "from": alice_id,
                    "kind": "offer",
                    "data": data,
                }
            answer = {"type": "answer", "sdp": "v=0\r\n"}
            await bob_ws.send_json(
                {"type": "signal", "to": alice_id, "kind": "answer", "data": answer}
            )
            assert await next_of_type(alice_ws, "signal") == {
                "type": "signal",
                "from": bob_p["id"],
                "kind": "answer",
                "data": answer,
            }
            rows = await db.fetch("SELECT replica_id FROM meeting.connections")
            assert len({row["replica_id"] for row in rows}) == 2
        gone = await next_event(alice_ws, skip=frozenset())
        assert (gone["type"], gone["participant"]["id"]) == (
            "participant.disconnected",
            bob_p["id"],
        )


async def test_a_killed_replicas_participants_become_disconnected(
    make_service, make_token, database_url, jwks_json, db
):
    fast = {"presence_heartbeat_s": 0.2, "presence_stale_s": 1.0}
    survivor = await make_service(**fast)
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(survivor, alice)
    bob_p = (await join(survivor, bob, room["code"]))["participant"]
    async with (
        room_socket(survivor, room["id"], alice) as (alice_ws, _),
        meeting_process(database_url, jwks_json, **fast) as (base, process),
        aiohttp.ClientSession() as session,
        room_socket(session, room["id"], bob, base=base) as (bob_ws, _),
    ):
        connected = await wait_for(
            alice_ws,
            lambda e: (
                e["type"] == "participant.connected" and e["participant"]["id"] == bob_p["id"]
            ),
        )
        assert connected["type"] == "participant.connected"
        assert await db.fetchval("SELECT count(*) FROM meeting.replicas") == 2
        # No goodbye: the process dies with Bob's socket open and registered.
        process.send_signal(signal.SIGKILL)
        await process.wait()
        gone = await next_event(alice_ws, skip=frozenset())
        assert gone["type"] == "participant.disconnected"
        assert gone["participant"]["id"] == bob_p["id"]
        assert gone["participant"]["connected"] is False
        assert (await connected_flags(survivor, alice, room["id"]))["u_bob"] is False
        assert await db.fetchval("SELECT count(*) FROM meeting.replicas") == 1
        left = await db.fetchval(
            "SELECT count(*) FROM meeting.connections WHERE participant_id = $1", bob_p["id"]
        )
        assert left == 0
        assert not bob_ws.closed or bob_ws.close_code is not None


async def test_many_sockets_at_once_are_told_once(make_service, make_token):
    """Opening and closing race on two replicas: one connected, one disconnected."""
    replicas = [await make_service(), await make_service()]
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(replicas[0], alice)
    bob_p = (await join(replicas[0], bob, room["code"]))["participant"]
    async with room_socket(replicas[0], room["id"], alice) as (alice_ws, _):
        async with contextlib.AsyncExitStack() as stack:
            await asyncio.gather(
                *(
                    stack.enter_async_context(room_socket(replicas[i % 2], room["id"], bob))
                    for i in range(10)
                )
            )
            # A marker after every open: the events before it are all there is.
            await alice_ws.send_json({"type": "hand", "raised": True})
            heard = await until_type(alice_ws, "participant.hand")
            about_bob = [
                f["type"] for f in heard if f.get("participant", {}).get("id") == bob_p["id"]
            ]
            assert about_bob.count("participant.connected") == 1
        # The last close to commit tells it; every other had committed before it.
        gone = await until_type(alice_ws, "participant.disconnected")
        assert gone[-1]["participant"]["id"] == bob_p["id"]
        await alice_ws.send_json({"type": "hand", "raised": False})
        heard = await until_type(alice_ws, "participant.hand")
        assert [f for f in heard if f.get("participant", {}).get("id") == bob_p["id"]] == []


async def test_a_replica_taken_for_dead_asks_its_clients_to_reconnect(make_service, make_token, db):
    """Its row was purged (say it was cut from the database too long): its sockets no
    longer count, so it closes them with 1012 and its clients connect again."""
    service = await make_service(presence_heartbeat_s=0.1, presence_stale_s=30)
    alice = make_token("alice")
    room = await create_room(service, alice)
    async with room_socket(service, room["id"], alice) as (ws, _):
        await db.execute("DELETE FROM meeting.replicas")
        message = await closed(ws)
        assert (message.data, message.extra) == (1012, "resync")
    async with room_socket(service, room["id"], alice) as (_, snapshot):
        assert snapshot["self"]["connected"] is True
        assert await db.fetchval("SELECT count(*) FROM meeting.replicas") == 1
