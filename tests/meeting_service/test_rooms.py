"""The room life cycle: read, look up by code, list mine, change settings, end."""

from __future__ import annotations

import pytest

from tests.conftest import bearer
from tests.meeting_service.conftest import TIMESTAMP, create_room, join

NOT_FOUND = {"error": "Room not found", "code": "room_not_found"}


async def test_get_by_id_adds_ended_at(api, make_token):
    token = make_token("alice")
    room = await create_room(api, token, name="Weekly")
    response = await api.get(f"/rooms/{room['id']}", headers=bearer(make_token("bob")))
    assert response.status == 200
    assert await response.json() == {**room, "endedAt": None}


async def test_get_unknown_room(api, make_token):
    response = await api.get("/rooms/cnosuchroom", headers=bearer(make_token()))
    assert response.status == 404
    assert await response.json() == NOT_FOUND


async def test_get_needs_a_token(api, make_token):
    room = await create_room(api, make_token())
    response = await api.get(f"/rooms/{room['id']}")
    assert response.status == 401
    assert await response.json() == {"error": "unauthorized", "code": "unauthorized"}


async def test_public_lookup_by_code(api, make_token):
    host = make_token("alice", name="Alice", picture="https://img.example/a.png")
    room = await create_room(api, host, name="Open house", waitingRoom=True)
    response = await api.get(f"/rooms/code/{room['code']}")
    assert response.status == 200
    assert await response.json() == {
        "id": room["id"],
        "code": room["code"],
        "name": "Open house",
        "isActive": True,
        "isLocked": False,
        "host": {"id": "u_alice", "displayName": "Alice", "avatarUrl": "https://img.example/a.png"},
        "settings": {"waitingRoom": True, "allowGuestAccess": True},
    }
    upper = await api.get(f"/rooms/code/{room['code'].upper()}")
    assert upper.status == 200
    assert (await upper.json())["id"] == room["id"]


async def test_public_lookup_of_an_unknown_code(api):
    response = await api.get("/rooms/code/zzz-zzz-zzz")
    assert response.status == 404
    assert await response.json() == NOT_FOUND


async def test_my_rooms_hosted_and_joined_newest_first(api, make_token):
    alice, bob = make_token("alice"), make_token("bob")
    first = await create_room(api, alice, name="first")
    second = await create_room(api, bob, name="bob's")
    third = await create_room(api, alice, name="third")
    waiting = await create_room(api, bob, name="waiting", waitingRoom=True)
    await join(api, alice, second["code"])
    await join(api, alice, waiting["code"])  # only waiting: not joined
    response = await api.get("/rooms", headers=bearer(alice))
    assert response.status == 200
    body = await response.json()
    assert [room["name"] for room in body["rooms"]] == ["third", "bob's", "first"]
    assert body["next_cursor"] is None
    assert body["rooms"][0] == {**third, "endedAt": None}
    bob_rooms = await (await api.get("/rooms", headers=bearer(bob))).json()
    assert [room["name"] for room in bob_rooms["rooms"]] == ["waiting", "bob's"]
    assert first["id"] not in {room["id"] for room in bob_rooms["rooms"]}


async def test_my_rooms_pages_with_a_cursor(api, make_token):
    alice = make_token("alice")
    names = [f"room {i}" for i in range(5)]
    for name in names:
        await create_room(api, alice, name=name)
    seen = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await api.get("/rooms", params=query, headers=bearer(alice))
        assert response.status == 200
        body = await response.json()
        seen += [room["name"] for room in body["rooms"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == names[::-1]
    assert pages == 3


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"limit": "0"}, "limit: Input should be greater than or equal to 1"),
        ({"limit": "101"}, "limit: Input should be less than or equal to 100"),
        (
            {"limit": "ten"},
            "limit: Input should be a valid integer, unable to parse string as an integer",
        ),
        ({"cursor": "garbage!"}, "invalid cursor"),
    ],
)
async def test_my_rooms_bad_query(api, make_token, query, error):
    response = await api.get("/rooms", params=query, headers=bearer(make_token()))
    assert response.status == 400
    assert (await response.json())["error"] == error


async def test_my_rooms_needs_a_token(api):
    response = await api.get("/rooms")
    assert response.status == 401
    assert await response.json() == {"error": "unauthorized", "code": "unauthorized"}


async def test_host_updates_every_setting(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    changes = {
        "name": "Renamed",
        "allowChat": False,
        "allowScreenShare": False,
        "allowGuestAccess": False,
        "waitingRoom": True,
        "muteParticipantsOnJoin": True,
        "maxParticipants": 7,
        "isLocked": True,
    }
    response = await api.patch(f"/rooms/{room['id']}/settings", json=changes, headers=bearer(alice))
    assert response.status == 200
    updated = await response.json()
    assert updated["name"] == "Renamed"
    assert updated["isLocked"] is True
    assert updated["settings"] == {
        "id": room["settings"]["id"],
        "roomId": room["id"],
        "allowChat": False,
        "allowScreenShare": False,
        "allowGuestAccess": False,
        "waitingRoom": True,
        "muteParticipantsOnJoin": True,
        "maxParticipants": 7,
    }
    assert TIMESTAMP.match(updated["updatedAt"])
    assert updated["updatedAt"] >= room["updatedAt"]
    assert updated["createdAt"] == room["createdAt"]
    fetched = await (await api.get(f"/rooms/{room['id']}", headers=bearer(alice))).json()
    assert fetched == updated


async def test_only_the_named_settings_change(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice, waitingRoom=True)
    response = await api.patch(
        f"/rooms/{room['id']}/settings", json={"allowChat": False}, headers=bearer(alice)
    )
    settings = (await response.json())["settings"]
    assert settings == {**room["settings"], "allowChat": False}


async def test_empty_patch_answers_the_room_unchanged(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    response = await api.patch(f"/rooms/{room['id']}/settings", headers=bearer(alice))
    assert response.status == 200
    assert await response.json() == {**room, "endedAt": None}


async def test_only_the_host_updates_settings(api, make_token):
    room = await create_room(api, make_token("alice"))
    bob = make_token("bob")
    await join(api, bob, room["code"])
    response = await api.patch(
        f"/rooms/{room['id']}/settings", json={"isLocked": True}, headers=bearer(bob)
    )
    assert response.status == 403
    assert await response.json() == {
        "error": "Only the host can update room settings",
        "code": "not_host",
    }


async def test_settings_of_an_unknown_room(api, make_token):
    response = await api.patch(
        "/rooms/cnosuchroom/settings", json={"isLocked": True}, headers=bearer(make_token())
    )
    assert response.status == 404
    assert await response.json() == NOT_FOUND


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": " "}, "name", "Value error, must not be blank"),
        ({"name": "x" * 101}, "name", "Value error, must be at most 100 characters"),
        ({"allowChat": "no"}, "allowChat", "Input should be a valid boolean"),
        ({"isLocked": None}, "isLocked", "Value error, must not be null"),
        ({"maxParticipants": 1}, "maxParticipants", "Input should be greater than or equal to 2"),
        ({"maxParticipants": 5.5}, "maxParticipants", "Input should be a valid integer"),
        ({"hostId": "u_bob"}, "hostId", "Extra inputs are not permitted"),
    ],
)
async def test_settings_validation(api, make_token, body, field, message):
    alice = make_token("alice")
    room = await create_room(api, alice)
    response = await api.patch(f"/rooms/{room['id']}/settings", json=body, headers=bearer(alice))
    assert response.status == 400
    assert await response.json() == {
        "error": f"{field}: {message}",
        "code": "invalid_fields",
        "details": [{"field": field, "message": message}],
    }


async def test_capacity_cannot_drop_below_who_is_inside(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    for name in ("bob", "carol"):
        await join(api, make_token(name), room["code"])
    url = f"/rooms/{room['id']}/settings"
    response = await api.patch(url, json={"maxParticipants": 2}, headers=bearer(alice))
    assert response.status == 409
    assert await response.json() == {
        "error": "maxParticipants cannot be lower than the number of participants already joined",
        "code": "capacity_below_joined",
    }
    response = await api.patch(url, json={"maxParticipants": 3}, headers=bearer(alice))
    assert response.status == 200
    assert (await response.json())["settings"]["maxParticipants"] == 3
    full = await join(api, make_token("dave"), room["code"], expect=409)
    assert full == {"error": "Room is full", "code": "room_full"}


async def test_host_ends_the_room_and_everyone_leaves(api, make_token, db):
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(api, alice)
    await join(api, bob, room["code"])
    response = await api.post(f"/rooms/{room['id']}/end", headers=bearer(alice))
    assert response.status == 200
    ended = await response.json()
    assert ended["isActive"] is False
    assert TIMESTAMP.match(ended["endedAt"])
    assert ended["updatedAt"] == ended["endedAt"]
    statuses = await db.fetch(
        "SELECT DISTINCT status FROM meeting.participants WHERE room_id = $1", room["id"]
    )
    assert [row["status"] for row in statuses] == ["left"]
    again = await api.post(f"/rooms/{room['id']}/end", headers=bearer(alice))
    assert again.status == 200
    assert await again.json() == ended
    fetched = await (await api.get(f"/rooms/{room['id']}", headers=bearer(bob))).json()
    assert fetched == ended
    lookup = await (await api.get(f"/rooms/code/{room['code']}")).json()
    assert lookup["isActive"] is False


async def test_an_ended_room_admits_no_one_and_takes_no_settings(api, make_token):
    alice = make_token("alice")
    room = await create_room(api, alice)
    await api.post(f"/rooms/{room['id']}/end", headers=bearer(alice))
    for token in (make_token("bob"), alice, make_token("guest", role="guest")):
        assert await join(api, token, room["code"], expect=409) == {
            "error": "Room is no longer active",
            "code": "room_inactive",
        }
    response = await api.patch(
        f"/rooms/{room['id']}/settings", json={"isLocked": True}, headers=bearer(alice)
    )
    assert response.status == 409
    assert await response.json() == {"error": "Room is no longer active", "code": "room_inactive"}


async def test_only_the_host_ends_the_room(api, make_token):
    room = await create_room(api, make_token("alice"))
    bob = make_token("bob")
    await join(api, bob, room["code"])
    response = await api.post(f"/rooms/{room['id']}/end", headers=bearer(bob))
    assert response.status == 403
    assert await response.json() == {"error": "Only the host can end the room", "code": "not_host"}
    missing = await api.post("/rooms/cnosuchroom/end", headers=bearer(bob))
    assert missing.status == 404
    assert await missing.json() == NOT_FOUND


ODD_CURSORS = [
    ["0001-01-01T00:00:00+14:00", "cabc"],
    ["9999-12-31T23:59:59-14:00", "cabc"],
    ["2026-01-01T00:00:00", "cabc"],
    ["2026-01-01T00:00:00Z", 1],
    ["2026-01-01T00:00:00Z", None],
    [None, "cabc"],
    [1, "cabc"],
    ["yesterday", "cabc"],
]


@pytest.mark.parametrize("position", ODD_CURSORS)
async def test_my_rooms_refuses_cursors_it_did_not_write(api, make_token, position):
    from shared.cursors import encode_cursor

    params = {"cursor": encode_cursor(*position)}
    response = await api.get("/rooms", params=params, headers=bearer(make_token()))
    assert response.status == 400
    assert await response.json() == {"error": "invalid cursor", "code": "invalid_cursor"}


async def test_deeply_nested_input_is_a_400(api, make_token):
    import base64

    token = make_token()
    nested = "[" * 100_000 + "]" * 100_000
    headers = {**bearer(token), "Content-Type": "application/json"}
    response = await api.post("/rooms", data=nested, headers=headers)
    assert response.status == 400
    assert await response.json() == {
        "error": "request body must be a JSON object",
        "code": "invalid_body",
    }
    room = await create_room(api, token)
    response = await api.patch(f"/rooms/{room['id']}/settings", data=nested, headers=headers)
    assert response.status == 400
    # Deep enough to exhaust the parser's recursion, short enough for a URL.
    shallower = "[" * 2_000 + "]" * 2_000
    cursor = base64.urlsafe_b64encode(shallower.encode()).decode().rstrip("=")
    response = await api.get("/rooms", params={"cursor": cursor}, headers=bearer(token))
    assert response.status == 400
    assert await response.json() == {"error": "invalid cursor", "code": "invalid_cursor"}
