"""The room life cycle: listing, joining, leaving, deleting, members."""

from __future__ import annotations

import re

from shared.cursors import encode_cursor
from tests.chat_service.helpers import (
    INVALID,
    NOT_FOUND,
    NOT_IN_ROOM,
    UNAUTHORIZED,
    call,
    create_room,
    join,
)

ISO_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


async def test_public_rooms_list_counts_members_and_marks_the_callers(api, auth):
    general = await create_room(api, auth("alice"), "General")
    empty = await create_room(api, auth("bob"), "Empty")
    await create_room(api, auth("alice"), "Hidden", password="pw")
    assert (await join(api, auth("carol"), "general"))[0] == 200

    status, body = await call(api, "GET", "/api/rooms", auth("carol"))
    assert status == 200
    rooms = body["rooms"]
    assert [r["room_id"] for r in rooms] == [general, empty]
    created = [r.pop("created_at") for r in rooms]
    assert all(re.match(ISO_MS, c) for c in created)
    assert rooms == [
        {
            "room_id": general,
            "name": "General",
            "is_private": False,
            "member_count": 2,
            "joined": True,
        },
        {
            "room_id": empty,
            "name": "Empty",
            "is_private": False,
            "member_count": 1,
            "joined": False,
        },
    ]


async def test_public_rooms_list_is_empty_at_first(api, auth):
    assert await call(api, "GET", "/api/rooms", auth()) == (200, {"rooms": []})


async def test_join_public_room_by_name_is_idempotent(api, auth, db):
    room_id = await create_room(api, auth("alice"), "General")
    expected = {"message": 'bob joined room "General"', "room_id": room_id, "room_name": "General"}
    assert await join(api, auth("bob"), "  GENERAL ") == (200, expected)
    first = await db.fetchval(
        "SELECT joined_at FROM chat.room_members WHERE username = 'bob' AND room_id = $1", room_id
    )
    assert await join(api, auth("bob"), "general", "ignored") == (200, expected)
    assert (
        await db.fetchval(
            "SELECT joined_at FROM chat.room_members WHERE username = 'bob' AND room_id = $1",
            room_id,
        )
        == first
    )
    assert await db.fetchval("SELECT count(*) FROM chat.room_members") == 2


async def test_join_private_room_needs_the_right_password(api, auth, db):
    room_id = await create_room(api, auth("alice"), "Secret", password="open sesame")
    assert await join(api, auth("bob"), "Secret") == (
        403,
        {"error": "password required", "code": "password_required"},
    )
    assert await join(api, auth("bob"), "Secret", "") == (
        403,
        {"error": "password required", "code": "password_required"},
    )
    assert await join(api, auth("bob"), "Secret", "open") == (
        403,
        {"error": "wrong password", "code": "wrong_password"},
    )
    assert await join(api, auth("bob"), "Secret", "x" * 100) == (
        403,
        {"error": "wrong password", "code": "wrong_password"},
    )
    assert await db.fetchval("SELECT count(*) FROM chat.room_members") == 1
    expected = {"message": 'bob joined room "Secret"', "room_id": room_id, "room_name": "Secret"}
    assert await join(api, auth("bob"), "secret", "open sesame") == (200, expected)
    # Already a member: joining again asks for nothing.
    assert await join(api, auth("bob"), "Secret") == (200, expected)
    assert await db.fetchval("SELECT count(*) FROM chat.room_members") == 2


async def test_join_unknown_room(api, auth):
    assert await join(api, auth(), "nowhere") == (404, NOT_FOUND)


async def test_join_invalid_fields(api, auth, db):
    await create_room(api, auth(), "r")
    for body in [
        {},
        {"name": ""},
        {"name": "  "},
        {"name": 5},
        {"name": None},
        {"name": ["a"]},
        {"name": "r", "password": 5},
    ]:
        answer = await call(api, "POST", "/api/join_room", auth("bob"), json=body)
        assert answer == (400, INVALID), body
    assert await db.fetchval("SELECT count(*) FROM chat.room_members") == 1


async def test_leave_room(api, auth, db):
    room_id = await create_room(api, auth("alice"), "General")
    await join(api, auth("bob"), "General")
    leave = {"room_id": room_id}
    assert await call(api, "POST", "/api/leave_room", auth("bob"), json=leave) == (
        200,
        {"message": 'left room "General"'},
    )
    assert await call(api, "POST", "/api/leave_room", auth("bob"), json=leave) == (403, NOT_IN_ROOM)
    assert await call(api, "POST", "/api/leave_room", auth("bob"), json={"room_id": 999}) == (
        404,
        NOT_FOUND,
    )
    usernames = await db.fetch("SELECT username FROM chat.room_members WHERE room_id = $1", room_id)
    assert [row["username"] for row in usernames] == ["alice"]


async def test_the_creator_may_leave_and_the_room_stays_theirs(api, auth, db):
    room_id = await create_room(api, auth("alice"), "General")
    status, _ = await call(api, "POST", "/api/leave_room", auth("alice"), json={"room_id": room_id})
    assert status == 200
    assert await db.fetchval("SELECT count(*) FROM chat.rooms") == 1
    status, body = await call(api, "GET", "/api/rooms", auth("alice"))
    assert status == 200
    assert (body["rooms"][0]["member_count"], body["rooms"][0]["joined"]) == (0, False)
    # Still the creator: may rejoin, and may delete.
    assert (await join(api, auth("alice"), "General"))[0] == 200
    status, body = await call(api, "GET", f"/api/room_members/{room_id}", auth("alice"))
    assert [(m["username"], m["is_creator"]) for m in body["members"]] == [("alice", True)]
    await call(api, "POST", "/api/leave_room", auth("alice"), json={"room_id": room_id})
    assert await call(
        api, "POST", "/api/delete_room", auth("alice"), json={"room_id": room_id}
    ) == (
        200,
        {"message": 'room "General" deleted'},
    )


async def test_delete_room_is_for_its_creator_and_removes_everything(api, auth, db):
    room_id = await create_room(api, auth("alice"), "General")
    await join(api, auth("bob"), "General")
    status, _ = await call(
        api,
        "POST",
        "/api/send_room_message",
        auth("bob"),
        json={"room_id": room_id, "message": "hi"},
    )
    assert status == 201
    body = {"room_id": room_id}
    assert await call(api, "POST", "/api/delete_room", auth("bob"), json=body) == (
        403,
        {"error": "only the room creator can delete it", "code": "not_room_creator"},
    )
    assert await call(api, "POST", "/api/delete_room", auth("alice"), json=body) == (
        200,
        {"message": 'room "General" deleted'},
    )
    for table in ("rooms", "room_members", "room_messages"):
        assert await db.fetchval(f"SELECT count(*) FROM chat.{table}") == 0  # noqa: S608
    assert await call(api, "POST", "/api/delete_room", auth("alice"), json=body) == (404, NOT_FOUND)
    assert await join(api, auth("bob"), "General") == (404, NOT_FOUND)


BAD_ROOM_IDS = [None, "1", 1.5, True, 0, -3, 2**63, [1], {"id": 1}]


async def test_room_id_must_be_a_positive_integer(api, auth, db):
    room_id = await create_room(api, auth(), "r")
    for path in ("/api/leave_room", "/api/delete_room"):
        assert await call(api, "POST", path, auth(), json={}) == (400, INVALID)
        for bad in BAD_ROOM_IDS:
            body = {"room_id": bad}
            assert await call(api, "POST", path, auth(), json=body) == (400, INVALID), body
    members = "SELECT count(*) FROM chat.room_members WHERE room_id = $1"
    assert await db.fetchval(members, room_id) == 1


async def test_a_body_that_is_not_an_object(api, auth):
    headers = {**auth(), "Content-Type": "application/json"}
    for path in ("/api/join_room", "/api/leave_room", "/api/delete_room"):
        for raw in (b"[1]", b"{", b"null", b'"x"'):
            assert await call(api, "POST", path, headers, data=raw) == (400, INVALID), (path, raw)


async def test_room_members(api, auth):
    room_id = await create_room(api, auth("alice"), "General")
    await join(api, auth("bob"), "General")
    # Anyone may see who is in a public room.
    status, body = await call(api, "GET", f"/api/room_members/{room_id}", auth("carol"))
    assert status == 200
    members = body["members"]
    assert [(m["username"], m["is_creator"]) for m in members] == [("alice", True), ("bob", False)]
    assert all(re.match(ISO_MS, m["joined_at"]) for m in members)
    assert await call(api, "GET", "/api/room_members/12345", auth()) == (404, NOT_FOUND)
    for bad in ("abc", "0", "-1", "1.5", str(2**63)):
        assert await call(api, "GET", f"/api/room_members/{bad}", auth()) == (400, INVALID)


async def test_room_members_in_pages(api, auth):
    room_id = await create_room(api, auth("alice"), "General")
    for name in ("bob", "carol", "dave", "erin"):
        assert (await join(api, auth(name), "General"))[0] == 200
    path = f"/api/room_members/{room_id}"
    status, everyone = await call(api, "GET", path, auth())
    assert status == 200
    assert everyone["next_cursor"] is None  # without limit or cursor: all of them, as before
    names = [m["username"] for m in everyone["members"]]
    assert names == ["alice", "bob", "carol", "dave", "erin"]
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page = await call(api, "GET", path, auth(), params=params)
        assert status == 200
        assert len(page["members"]) <= 2
        seen += page["members"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everyone["members"]
    # A cursor alone pages on by 50.
    status, first = await call(api, "GET", path, auth(), params={"limit": "1"})
    status, rest = await call(api, "GET", path, auth(), params={"cursor": first["next_cursor"]})
    assert status == 200
    assert rest == {"members": everyone["members"][1:], "next_cursor": None}
    for bad in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "nope"}):
        assert await call(api, "GET", path, auth(), params=bad) == (400, INVALID), bad
    assert await call(api, "GET", path, auth(), params={"cursor": "W10"}) == (400, INVALID)


async def test_a_private_rooms_members_are_for_its_members_only(api, auth):
    first = await create_room(api, auth("alice"), "First", password="one")
    second = await create_room(api, auth("bob"), "Second", password="two")
    assert await call(api, "GET", f"/api/room_members/{second}", auth("alice")) == (
        403,
        NOT_IN_ROOM,
    )
    assert await call(api, "GET", f"/api/room_members/{first}", auth("bob")) == (403, NOT_IN_ROOM)
    await join(api, auth("bob"), "First", "one")
    status, body = await call(api, "GET", f"/api/room_members/{first}", auth("bob"))
    assert status == 200
    assert [m["username"] for m in body["members"]] == ["alice", "bob"]


async def test_user_rooms_pages_newest_joined_first(api, auth):
    ids = [await create_room(api, auth("alice"), f"room {n}", password="pw") for n in range(4)]
    other = await create_room(api, auth("bob"), "bob's")
    await join(api, auth("alice"), "bob's")
    await create_room(api, auth("bob"), "not alice's")
    expected_ids = [other, *reversed(ids)]

    seen = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        status, body = await call(api, "GET", "/api/user_rooms", auth("alice"), params=params)
        assert status == 200
        assert len(body["rooms"]) <= 2
        seen.extend(body["rooms"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [r["room_id"] for r in seen] == expected_ids
    assert seen[0] | {"joined_at": None} == {
        "room_id": other,
        "name": "bob's",
        "is_private": False,
        "is_creator": False,
        "joined_at": None,
    }
    assert seen[1] | {"joined_at": None} == {
        "room_id": ids[3],
        "name": "room 3",
        "is_private": True,
        "is_creator": True,
        "joined_at": None,
    }
    status, body = await call(api, "GET", "/api/user_rooms", auth("alice"))
    assert (status, len(body["rooms"]), body["next_cursor"]) == (200, 5, None)
    assert await call(api, "GET", "/api/user_rooms", auth("nobody")) == (
        200,
        {"rooms": [], "next_cursor": None},
    )


ODD_CURSORS = [
    ["0001-01-01T00:00:00+14:00", 1],
    ["9999-12-31T23:59:59-14:00", 1],
    ["2026-01-01T00:00:00", 1],
    ["2026-01-01T00:00:00Z", 1.0],
    ["2026-01-01T00:00:00Z", 0],
    ["2026-01-01T00:00:00Z", True],
    [None, 1],
    [1, 1],
    ["yesterday", 1],
]


async def test_user_rooms_refuses_cursors_it_did_not_write(api, auth):
    for position in ODD_CURSORS:
        params = {"cursor": encode_cursor(*position)}
        answer = await call(api, "GET", "/api/user_rooms", auth(), params=params)
        assert answer == (400, INVALID), position


async def test_user_rooms_invalid_query(api, auth):
    for params in [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "x"},
        {"limit": ""},
        {"cursor": "garbage!"},
        {"cursor": "WzFd"},
        {"cursor": "WyJ4IiwxXQ"},
    ]:
        answer = await call(api, "GET", "/api/user_rooms", auth(), params=params)
        assert answer == (400, INVALID), params


ROUTES = [
    ("GET", "/api/rooms"),
    ("GET", "/api/user_rooms"),
    ("POST", "/api/join_room"),
    ("POST", "/api/leave_room"),
    ("POST", "/api/delete_room"),
    ("GET", "/api/room_members/1"),
    ("POST", "/api/send_room_message"),
    ("GET", "/api/get_room_messages?room_id=1"),
]


async def test_every_route_needs_a_user_token(api, make_token):
    guest = make_token("visitor", role="guest")
    for method, path in ROUTES:
        for headers in (None, {"Authorization": "Bearer nope"}, {"Authorization": guest}):
            answer = await call(api, method, path, headers, json={"room_id": 1})
            assert answer == (401, UNAUTHORIZED), (method, path, headers)


async def test_unencodable_text_is_refused_not_a_crash(api, auth, db):
    await create_room(api, auth(), "Secret", password="pw")
    headers = {**auth("bob"), "Content-Type": "application/json"}
    for path, raw in (
        ("/api/create_room", b'{"room_name": "\\ud800"}'),
        ("/api/create_room", b'{"room_name": "x", "is_private": 1, "password": "\\udfff"}'),
        ("/api/join_room", b'{"name": "\\ud800"}'),
        ("/api/join_room", b'{"name": "Secret", "password": "\\ud800"}'),
    ):
        assert await call(api, "POST", path, headers, data=raw) == (400, INVALID), raw
    assert await db.fetchval("SELECT count(*) FROM chat.room_members") == 1
