"""Joining by code, the waiting room, leaving, removal, the participant list, capacity."""

from __future__ import annotations

import asyncio

from tests.conftest import bearer
from tests.meeting_service.conftest import ID, TIMESTAMP, create_room, join

PARTICIPANT_KEYS = {
    "id",
    "userId",
    "displayName",
    "avatarUrl",
    "isHost",
    "isGuest",
    "status",
    "joinedAt",
    "media",
    "handRaised",
    "connected",
}


async def participants(api, token, room_id, expect=200):
    response = await api.get(f"/rooms/{room_id}/participants", headers=bearer(token))
    body = await response.json()
    assert response.status == expect, body
    return body


async def test_join_by_code(api, make_token):
    room = await create_room(api, make_token("alice"))
    bob = make_token("bob", name="Bob", picture="https://img.example/b.png")
    body = await join(api, bob, room["code"])
    assert set(body) == {"participant", "room"}
    joined = body["participant"]
    assert set(joined) == PARTICIPANT_KEYS
    assert ID.match(joined["id"])
    assert TIMESTAMP.match(joined["joinedAt"])
    assert joined == {
        "id": joined["id"],
        "userId": "u_bob",
        "displayName": "Bob",
        "avatarUrl": "https://img.example/b.png",
        "isHost": False,
        "isGuest": False,
        "status": "joined",
        "joinedAt": joined["joinedAt"],
        "media": {"audio": True, "video": True, "screen": False},
        "handRaised": False,
        "connected": False,
    }
    assert body["room"] == {**room, "endedAt": None}


async def test_joining_again_is_idempotent(api, make_token):
    room = await create_room(api, make_token("alice"))
    bob = make_token("bob")
    first = await join(api, bob, room["code"])
    second = await join(api, bob, room["code"].upper())
    assert second == first
    listed = await participants(api, bob, room["id"])
    assert [p["userId"] for p in listed["participants"]] == ["u_alice", "u_bob"]


async def test_the_host_is_in_the_room_from_creation(api, make_token):
    alice = make_token("alice", name="Alice")
    room = await create_room(api, alice)
    listed = await participants(api, alice, room["id"])
    [host] = listed["participants"]
    assert host["userId"] == "u_alice"
    assert host["displayName"] == "Alice"
    assert host["isHost"] is True
    assert host["status"] == "joined"
    assert host["joinedAt"] == room["createdAt"]
    again = await join(api, alice, room["code"])
    assert again["participant"] == host


async def test_join_unknown_code_and_no_token(api, make_token):
    response = await api.post("/rooms/code/zzz-zzz-zzz/join", headers=bearer(make_token()))
    assert response.status == 404
    assert await response.json() == {"error": "Room not found", "code": "room_not_found"}
    room = await create_room(api, make_token("alice"))
    response = await api.post(f"/rooms/code/{room['code']}/join")
    assert response.status == 401
    assert await response.json() == {"error": "unauthorized", "code": "unauthorized"}


async def test_a_guest_joins_where_guests_are_allowed(api, make_token):
    room = await create_room(api, make_token("alice"))
    guest = make_token(role="guest", user_id="g_visitor", name="Visitor")
    body = await join(api, guest, room["code"])
    assert body["participant"]["userId"] == "g_visitor"
    assert body["participant"]["displayName"] == "Visitor"
    assert body["participant"]["isGuest"] is True
    assert body["participant"]["status"] == "joined"
    listed = await participants(api, guest, room["id"])
    assert [p["isGuest"] for p in listed["participants"]] == [False, True]


async def test_guests_are_refused_where_not_allowed(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    await api.patch(
        f"/rooms/{room['id']}/settings", json={"allowGuestAccess": False}, headers=bearer(alice)
    )
    guest = make_token(role="guest", user_id="g_visitor", name="Visitor")
    assert await join(api, guest, room["code"], expect=403) == {
        "error": "Guest access is not allowed",
        "code": "guests_not_allowed",
    }
    await join(api, make_token("bob"), room["code"])


async def test_a_locked_room_admits_only_its_host(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    await api.post(f"/rooms/{room['id']}/leave", headers=bearer(alice))
    locked = await api.patch(
        f"/rooms/{room['id']}/settings", json={"isLocked": True}, headers=bearer(alice)
    )
    assert (await locked.json())["isLocked"] is True
    assert await join(api, make_token("bob"), room["code"], expect=423) == {
        "error": "Room is locked",
        "code": "room_locked",
    }
    back = await join(api, alice, room["code"])
    assert back["participant"]["status"] == "joined"


async def test_a_full_room_refuses(api, make_token):
    room = await create_room(api, make_token("alice"), maxParticipants=2)
    await join(api, make_token("bob"), room["code"])
    assert await join(api, make_token("carol"), room["code"], expect=409) == {
        "error": "Room is full",
        "code": "room_full",
    }


async def test_the_waiting_room(api, make_token):
    alice, bob, carol = make_token("alice"), make_token("bob"), make_token("carol")
    room = await create_room(api, alice, waitingRoom=True)
    waiting = (await join(api, bob, room["code"]))["participant"]
    assert waiting["status"] == "waiting"
    assert (await join(api, bob, room["code"]))["participant"] == waiting
    # Waiting is not being inside.
    assert await participants(api, bob, room["id"], expect=403) == {
        "error": "You are not in this room",
        "code": "not_in_room",
    }
    host_view = await participants(api, alice, room["id"])
    assert [(p["userId"], p["status"]) for p in host_view["participants"]] == [
        ("u_alice", "joined"),
        ("u_bob", "waiting"),
    ]
    admit_url = f"/rooms/{room['id']}/participants/{waiting['id']}/admit"
    refused = await api.post(admit_url, headers=bearer(carol))
    assert refused.status == 403
    assert await refused.json() == {
        "error": "Only the host can admit participants",
        "code": "not_host",
    }
    response = await api.post(admit_url, headers=bearer(alice))
    assert response.status == 200
    admitted = await response.json()
    assert admitted["status"] == "joined"
    assert admitted["id"] == waiting["id"]
    assert (await (await api.post(admit_url, headers=bearer(alice))).json()) == admitted
    # Others see only who is joined, never who waits.
    carol_waits = (await join(api, carol, room["code"]))["participant"]
    bob_view = await participants(api, bob, room["id"])
    assert [p["userId"] for p in bob_view["participants"]] == ["u_alice", "u_bob"]
    deny_url = f"/rooms/{room['id']}/participants/{carol_waits['id']}/deny"
    refused = await api.post(deny_url, headers=bearer(bob))
    assert refused.status == 403
    assert await refused.json() == {
        "error": "Only the host can deny participants",
        "code": "not_host",
    }
    denied = await api.post(deny_url, headers=bearer(alice))
    assert denied.status == 200
    assert (await denied.json())["status"] == "denied"
    host_view = await participants(api, alice, room["id"])
    assert [p["userId"] for p in host_view["participants"]] == ["u_alice", "u_bob"]
    # Turned away once, one may knock again.
    assert (await join(api, carol, room["code"]))["participant"]["status"] == "waiting"


async def test_the_host_never_waits(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice, waitingRoom=True)
    await api.post(f"/rooms/{room['id']}/leave", headers=bearer(alice))
    assert (await join(api, alice, room["code"]))["participant"]["status"] == "joined"


async def test_admitting_rechecks_capacity(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice, waitingRoom=True, maxParticipants=2)
    bob = (await join(api, make_token("bob"), room["code"]))["participant"]
    carol = (await join(api, make_token("carol"), room["code"]))["participant"]
    base = f"/rooms/{room['id']}/participants"
    assert (await api.post(f"{base}/{bob['id']}/admit", headers=bearer(alice))).status == 200
    response = await api.post(f"{base}/{carol['id']}/admit", headers=bearer(alice))
    assert response.status == 409
    assert await response.json() == {"error": "Room is full", "code": "room_full"}


async def test_admit_and_deny_need_someone_waiting(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    bob = (await join(api, make_token("bob"), room["code"]))["participant"]
    base = f"/rooms/{room['id']}/participants"
    response = await api.post(f"{base}/{bob['id']}/deny", headers=bearer(alice))
    assert response.status == 409
    assert await response.json() == {
        "error": "Participant is not waiting",
        "code": "participant_not_waiting",
    }
    response = await api.post(f"{base}/cnosuchparticipant/admit", headers=bearer(alice))
    assert response.status == 404
    assert await response.json() == {
        "error": "Participant not found",
        "code": "participant_not_found",
    }
    response = await api.post("/rooms/cnosuchroom/participants/x/admit", headers=bearer(alice))
    assert response.status == 404
    assert await response.json() == {"error": "Room not found", "code": "room_not_found"}


async def test_leave_and_come_back(api, make_token):
    room = await create_room(api, make_token("alice"), maxParticipants=2)
    bob = make_token("bob")
    joined = (await join(api, bob, room["code"]))["participant"]
    response = await api.post(f"/rooms/{room['id']}/leave", headers=bearer(bob))
    assert response.status == 200
    left = await response.json()
    assert left == {**joined, "status": "left"}
    again = await api.post(f"/rooms/{room['id']}/leave", headers=bearer(bob))
    assert again.status == 200
    assert await again.json() == left
    # Leaving frees the place.
    await join(api, make_token("carol"), room["code"])
    assert await join(api, bob, room["code"], expect=409) == {
        "error": "Room is full",
        "code": "room_full",
    }


async def test_rejoining_keeps_the_participant_id(api, make_token):
    room = await create_room(api, make_token("alice"))
    bob = make_token("bob")
    joined = (await join(api, bob, room["code"]))["participant"]
    await api.post(f"/rooms/{room['id']}/leave", headers=bearer(bob))
    back = (await join(api, bob, room["code"]))["participant"]
    assert back["id"] == joined["id"]
    assert back["status"] == "joined"


async def test_leave_errors(api, make_token):
    room = await create_room(api, make_token("alice"))
    response = await api.post(f"/rooms/{room['id']}/leave", headers=bearer(make_token("bob")))
    assert response.status == 404
    assert await response.json() == {
        "error": "Participant not found",
        "code": "participant_not_found",
    }
    response = await api.post("/rooms/cnosuchroom/leave", headers=bearer(make_token("bob")))
    assert response.status == 404
    assert await response.json() == {"error": "Room not found", "code": "room_not_found"}


async def test_the_host_removes_a_participant(api, make_token):
    alice, bob, carol = make_token("alice"), make_token("bob"), make_token("carol")
    room = await create_room(api, alice)
    bob_p = (await join(api, bob, room["code"]))["participant"]
    await join(api, carol, room["code"])
    url = f"/rooms/{room['id']}/participants/{bob_p['id']}"
    refused = await api.delete(url, headers=bearer(carol))
    assert refused.status == 403
    assert await refused.json() == {
        "error": "Only the host can remove participants",
        "code": "not_host",
    }
    response = await api.delete(url, headers=bearer(alice))
    assert response.status == 204
    assert await response.read() == b""
    listed = await participants(api, alice, room["id"])
    assert [p["userId"] for p in listed["participants"]] == ["u_alice", "u_carol"]
    assert await participants(api, bob, room["id"], expect=403) == {
        "error": "You are not in this room",
        "code": "not_in_room",
    }
    assert await join(api, bob, room["code"], expect=403) == {
        "error": "You have been removed from this room",
        "code": "removed_from_room",
    }
    assert (await api.delete(url, headers=bearer(alice))).status == 204


async def test_remove_errors(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    host = (await participants(api, alice, room["id"]))["participants"][0]
    base = f"/rooms/{room['id']}/participants"
    response = await api.delete(f"{base}/{host['id']}", headers=bearer(alice))
    assert response.status == 400
    assert await response.json() == {
        "error": "The host cannot be removed",
        "code": "host_not_removable",
    }
    response = await api.delete(f"{base}/cnosuchparticipant", headers=bearer(alice))
    assert response.status == 404
    assert await response.json() == {
        "error": "Participant not found",
        "code": "participant_not_found",
    }


async def test_participants_of_a_room_one_is_not_in(api, make_token):
    room = await create_room(api, make_token("alice"))
    assert await participants(api, make_token("mallory"), room["id"], expect=403) == {
        "error": "You are not in this room",
        "code": "not_in_room",
    }
    assert await participants(api, make_token("mallory"), "cnosuchroom", expect=404) == {
        "error": "Room not found",
        "code": "room_not_found",
    }


async def test_thirty_simultaneous_joins_for_ten_places(service, make_token, db):
    """Capacity holds in Postgres: the join transaction locks the room's row."""
    room = await create_room(service, make_token("host"), maxParticipants=11)
    tokens = [make_token(f"user{i}") for i in range(30)]
    responses = await asyncio.gather(
        *(
            service.post(f"/rooms/code/{room['code']}/join", headers=bearer(token))
            for token in tokens
        )
    )
    bodies = [await response.json() for response in responses]
    statuses = [response.status for response in responses]
    assert statuses.count(200) == 10
    assert statuses.count(409) == 20
    assert all(
        body["participant"]["status"] == "joined" for body in bodies if "participant" in body
    )
    assert all(
        body == {"error": "Room is full", "code": "room_full"}
        for body in bodies
        if "participant" not in body
    )
    joined = await db.fetchval(
        "SELECT count(*) FROM meeting.participants WHERE room_id = $1 AND status = 'joined'",
        room["id"],
    )
    assert joined == 11


async def test_simultaneous_admissions_respect_capacity(service, make_token, db):
    host = make_token("host")
    room = await create_room(service, host, maxParticipants=3, waitingRoom=True)
    waiting = [
        (await join(service, make_token(f"user{i}"), room["code"]))["participant"] for i in range(6)
    ]
    base = f"/rooms/{room['id']}/participants"
    responses = await asyncio.gather(
        *(service.post(f"{base}/{p['id']}/admit", headers=bearer(host)) for p in waiting)
    )
    assert sorted(response.status for response in responses) == [200, 200, 409, 409, 409, 409]
    joined = await db.fetchval(
        "SELECT count(*) FROM meeting.participants WHERE room_id = $1 AND status = 'joined'",
        room["id"],
    )
    assert joined == 3
