"""Media state and hand on the participant: defaults, muteParticipantsOnJoin, what is stored."""

from __future__ import annotations

from tests.conftest import bearer
from tests.meeting_service.conftest import create_room, join

ON = {"audio": True, "video": True, "screen": False}
MUTED = {"audio": False, "video": True, "screen": False}


async def settings(api, token, room_id, **changes):
    response = await api.patch(f"/rooms/{room_id}/settings", json=changes, headers=bearer(token))
    assert response.status == 200, await response.text()


async def listed(api, token, room_id):
    response = await api.get(f"/rooms/{room_id}/participants", headers=bearer(token))
    assert response.status == 200
    return {p["userId"]: p for p in (await response.json())["participants"]}


async def test_a_participant_joins_with_microphone_and_camera_on_hand_down(api, make_token, db):
    alice = make_token("alice")
    room = await create_room(api, alice)
    bob = (await join(api, make_token("bob"), room["code"]))["participant"]
    assert (bob["media"], bob["handRaised"], bob["connected"]) == (ON, False, False)
    everyone = await listed(api, alice, room["id"])
    assert everyone["u_alice"]["media"] == ON
    assert everyone["u_bob"]["media"] == ON
    stored = await db.fetchrow(
        "SELECT audio, video, screen, hand_raised FROM meeting.participants WHERE id = $1",
        bob["id"],
    )
    assert dict(stored) == {"audio": True, "video": True, "screen": False, "hand_raised": False}


async def test_mute_on_join_mutes_everyone_but_the_host(api, make_token, db):
    alice = make_token("alice")
    room = await create_room(api, alice)
    await settings(api, alice, room["id"], muteParticipantsOnJoin=True)
    bob = (await join(api, make_token("bob"), room["code"]))["participant"]
    assert bob["media"] == MUTED
    assert await db.fetchval("SELECT audio FROM meeting.participants WHERE id = $1", bob["id"]) is (
        False
    )
    # The host leaving and coming back is not muted by their own room.
    await api.post(f"/rooms/{room['id']}/leave", headers=bearer(alice))
    host = (await join(api, alice, room["code"]))["participant"]
    assert host["isHost"] and host["media"] == ON


async def test_mute_on_join_applies_when_admitted_from_the_waiting_room(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice, waitingRoom=True)
    bob = (await join(api, make_token("bob"), room["code"]))["participant"]
    assert bob["status"] == "waiting"
    # Turned on while Bob waits: he still reaches `joined` muted.
    await settings(api, alice, room["id"], muteParticipantsOnJoin=True)
    response = await api.post(
        f"/rooms/{room['id']}/participants/{bob['id']}/admit", headers=bearer(alice)
    )
    admitted = await response.json()
    assert admitted["status"] == "joined"
    assert admitted["media"] == MUTED


async def test_joining_again_starts_afresh(api, make_token, db):
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(api, alice)
    first = (await join(api, bob, room["code"]))["participant"]
    await db.execute(
        "UPDATE meeting.participants SET audio = false, video = false, hand_raised = true"
        " WHERE id = $1",
        first["id"],
    )
    await api.post(f"/rooms/{room['id']}/leave", headers=bearer(bob))
    again = (await join(api, bob, room["code"]))["participant"]
    assert again["id"] == first["id"]
    assert (again["media"], again["handRaised"]) == (ON, False)
