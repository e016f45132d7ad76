"""POST /api/create_room, to the letter of the seed document."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import bcrypt
import pytest

from chat_service.app import create_app
from chat_service.settings import ChatSettings
from tests.chat_service.helpers import (
    INVALID,
    NAME_TAKEN,
    UNAUTHORIZED,
    call,
    create_room,
    quota,
)

PATH = "/api/create_room"


async def test_public_room_is_created_with_its_creator_as_member(api, auth, db):
    status, body = await call(
        api, "POST", PATH, auth("alice"), json={"room_name": "General Discussion", "is_private": 0}
    )
    assert status == 201
    assert body == {"message": 'room "General Discussion" created', "room_id": body["room_id"]}
    assert type(body["room_id"]) is int
    room = await db.fetchrow("SELECT * FROM chat.rooms WHERE id = $1", body["room_id"])
    assert room["name"] == "General Discussion"
    assert room["is_private"] is False
    assert room["password_hash"] is None
    assert room["creator"] == "alice"
    members = await db.fetch(
        "SELECT username FROM chat.room_members WHERE room_id = $1", room["id"]
    )
    assert [m["username"] for m in members] == ["alice"]


async def test_is_private_defaults_to_public_and_the_bare_token_works(api, auth, db):
    status, body = await call(api, "POST", PATH, auth("bob", bare=True), json={"room_name": "r"})
    assert (status, body["message"]) == (201, 'room "r" created')
    assert await db.fetchval("SELECT is_private FROM chat.rooms") is False


async def test_the_name_is_stored_and_answered_trimmed(api, auth, db):
    status, body = await call(api, "POST", PATH, auth(), json={"room_name": "  Lobby \t\n"})
    assert (status, body["message"]) == (201, 'room "Lobby" created')
    assert await db.fetchval("SELECT name FROM chat.rooms") == "Lobby"


async def test_private_room_stores_a_bcrypt_hash_that_never_comes_back(api, auth, db):
    request = {"room_name": "Secret Club", "is_private": 1, "password": "secure-password"}
    async with api.post(PATH, headers=auth(), json=request) as response:
        assert response.status == 201
        raw = await response.text()
    body = json.loads(raw)
    assert body == {"message": 'room "Secret Club" created', "room_id": body["room_id"]}
    stored = await db.fetchval(
        "SELECT password_hash FROM chat.rooms WHERE id = $1 AND is_private", body["room_id"]
    )
    assert stored.startswith("$2b$04$")
    assert bcrypt.checkpw(b"secure-password", stored.encode())
    assert "secure-password" not in stored
    assert stored not in raw and "password" not in raw
    for path in ("/api/rooms", "/api/user_rooms", f"/api/room_members/{body['room_id']}"):
        async with api.get(path, headers=auth()) as response:
            text = await response.text()
            assert response.status == 200, text
            assert stored not in text and "secure-password" not in text


async def test_limits_at_the_edge_are_accepted(api, auth, db):
    name = "n" * 100
    password = "é" * 36  # 72 bytes
    status, body = await call(
        api, "POST", PATH, auth(), json={"room_name": name, "is_private": 1, "password": password}
    )
    assert (status, body["message"]) == (201, f'room "{name}" created')
    stored = await db.fetchval("SELECT password_hash FROM chat.rooms")
    assert bcrypt.checkpw(password.encode(), stored.encode())


async def test_public_rooms_ignore_any_password(api, auth, db):
    for name, password in (("a", "x"), ("b", 123), ("c", None), ("d", "")):
        status, _ = await call(
            api,
            "POST",
            PATH,
            auth(),
            json={"room_name": name, "is_private": 0, "password": password},
        )
        assert status == 201
    assert await db.fetchval("SELECT count(*) FROM chat.rooms WHERE password_hash IS NULL") == 4


INVALID_BODIES = [
    {},
    {"room_name": ""},
    {"room_name": "   "},
    {"room_name": None},
    {"is_private": 0},
    {"room_name": "r", "is_private": 2},
    {"room_name": "r", "is_private": -1},
    {"room_name": "r", "is_private": "1"},
    {"room_name": "r", "is_private": "0"},
    {"room_name": "r", "is_private": True},
    {"room_name": "r", "is_private": False},
    {"room_name": "r", "is_private": 1.0},
    {"room_name": "r", "is_private": None},
    {"room_name": "r", "is_private": 1},
    {"room_name": "r", "is_private": 1, "password": ""},
    {"room_name": "r", "is_private": 1, "password": None},
    {"room_name": "r", "is_private": 1, "password": 1234},
    {"room_name": "r", "is_private": 1, "password": "x" * 73},
    {"room_name": "r", "is_private": 1, "password": "é" * 37},
    {"room_name": "r" * 101},
    {"room_name": "nul\u0000name"},
]


# One database per test is the slow part: cases that leave nothing behind share one.
async def test_invalid_fields(api, auth, db):
    for body in INVALID_BODIES:
        assert await call(api, "POST", PATH, auth(), json=body) == (400, INVALID), body
    assert await db.fetchval("SELECT count(*) FROM chat.rooms") == 0


async def test_a_body_that_is_not_a_json_object(api, auth):
    headers = {**auth(), "Content-Type": "application/json"}
    for raw in ["[]", '["room_name"]', '"room"', "123", "null", "true", "{not json", "\xff\xfe"]:
        data = raw.encode("latin-1")
        assert await call(api, "POST", PATH, headers, data=data) == (400, INVALID), raw


async def test_an_empty_body_has_no_room_name(api, auth):
    assert await call(api, "POST", PATH, auth()) == (400, INVALID)


async def test_room_name_must_be_a_string(api, auth, db):
    for name in [123, 0, 1.5, True, False, [], ["General"], {}, {"a": "b"}]:
        for extra in ({}, {"is_private": 1, "password": "pw"}, {"is_private": 7}):
            body = {"room_name": name, **extra}
            answer = await call(api, "POST", PATH, auth(), json=body)
            assert answer == (
                400,
                {"error": "room_name must be a string", "code": "invalid_fields"},
            ), body
    assert await db.fetchval("SELECT count(*) FROM chat.rooms") == 0


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"room_name": "General"}, {"room_name": "General"}),
        ({"room_name": "General"}, {"room_name": "  gENERAL "}),
        ({"room_name": "Café Ωmega"}, {"room_name": "CAFÉ ωMEGA"}),
        ({"room_name": "General"}, {"room_name": "general", "is_private": 1, "password": "p"}),
        ({"room_name": "Secret", "is_private": 1, "password": "p"}, {"room_name": "SECRET"}),
        (
            {"room_name": "Secret", "is_private": 1, "password": "p"},
            {"room_name": "secret ", "is_private": 1, "password": "q"},
        ),
    ],
)
async def test_room_already_exists(api, auth, db, first, second):
    assert (await call(api, "POST", PATH, auth("alice"), json=first))[0] == 201
    assert await call(api, "POST", PATH, auth("bob"), json=second) == (400, NAME_TAKEN)
    assert await db.fetchval("SELECT count(*) FROM chat.rooms") == 1
    assert await db.fetchval("SELECT username FROM chat.room_members") == "alice"


async def test_five_public_rooms_at_most_and_private_rooms_are_never_limited(api, auth, db):
    for n in range(5):
        await create_room(api, auth(), f"public {n}")
    status, body = await call(api, "POST", PATH, auth("bob"), json={"room_name": "sixth"})
    assert (status, body) == (400, quota(5))
    # A taken name is still reported as such when the quota is full.
    status, body = await call(api, "POST", PATH, auth("bob"), json={"room_name": "PUBLIC 1"})
    assert (status, body) == (400, NAME_TAKEN)
    for n in range(7):
        await create_room(api, auth("bob"), f"private {n}", password="pw")
    assert await db.fetchval("SELECT count(*) FROM chat.rooms WHERE NOT is_private") == 5
    assert await db.fetchval("SELECT count(*) FROM chat.rooms WHERE is_private") == 7
    # Each room has its creator as its one member; the refusals left nothing behind.
    assert (
        await db.fetchval(
            "SELECT count(*) FROM chat.rooms r JOIN chat.room_members m"
            " ON m.room_id = r.id AND m.username = r.creator"
        )
        == 12
    )
    assert await db.fetchval("SELECT count(*) FROM chat.room_members") == 12


async def test_unauthorized(api, auth, make_token, db):
    body = {"room_name": "r"}
    guest = make_token("visitor", role="guest")
    expired = make_token("alice", ttl_s=-60)
    for headers in (
        None,
        {"Authorization": ""},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "not-a-token"},
        {"Authorization": f"Bearer {guest}"},
        {"Authorization": guest},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": auth()["Authorization"] + "x"},
    ):
        assert await call(api, "POST", PATH, headers, json=body) == (401, UNAUTHORIZED)
    assert await db.fetchval("SELECT count(*) FROM chat.rooms") == 0


async def test_the_limit_follows_the_setting(aiohttp_client, database_url, jwks_json, auth):
    settings = ChatSettings(
        database_url=database_url, jwks=jwks_json, bcrypt_rounds=4, max_public_rooms=2
    )
    client = await aiohttp_client(create_app(settings))
    await create_room(client, auth(), "one")
    await create_room(client, auth(), "two")
    assert await call(client, "POST", PATH, auth(), json={"room_name": "three"}) == (
        400,
        quota(2),
    )


async def test_deleting_frees_the_name_and_the_public_slot(api, auth, db):
    ids = [await create_room(api, auth(), f"room {n}") for n in range(5)]
    status, _ = await call(api, "POST", "/api/delete_room", auth(), json={"room_id": ids[2]})
    assert status == 200
    new_id = await create_room(api, auth("bob"), "ROOM 2")
    assert new_id not in ids
    assert await db.fetchval("SELECT count(*) FROM chat.rooms WHERE NOT is_private") == 5


async def test_100_simultaneous_public_creations_make_exactly_five(service, auth, db):
    async def attempt(n: int) -> tuple[int, Any]:
        return await call(service, "POST", PATH, auth(f"user{n}"), json={"room_name": f"r{n}"})

    results = await asyncio.gather(*(attempt(n) for n in range(100)))
    created = [body for status, body in results if status == 201]
    refused = [(status, body) for status, body in results if status != 201]
    assert len(created) == 5
    assert refused == [(400, quota(5))] * 95
    rows = await db.fetch("SELECT id, name FROM chat.rooms WHERE NOT is_private")
    assert sorted(row["id"] for row in rows) == sorted(body["room_id"] for body in created)
    assert await db.fetchval("SELECT count(*) FROM chat.room_members") == 5


async def test_50_simultaneous_creations_of_one_name_make_exactly_one(service, auth, db):
    async def attempt(n: int) -> tuple[int, Any]:
        # Half public, half private: uniqueness spans both.
        body: dict[str, Any] = {"room_name": " Same Name " if n % 3 else "same name"}
        if n % 2:
            body |= {"is_private": 1, "password": "pw"}
        return await call(service, "POST", PATH, auth(f"user{n}"), json=body)

    results = await asyncio.gather(*(attempt(n) for n in range(50)))
    assert sorted(status for status, _ in results) == [201] + [400] * 49
    assert [body for status, body in results if status == 400] == [NAME_TAKEN] * 49
    room_id = next(body["room_id"] for status, body in results if status == 201)
    assert await db.fetchval("SELECT count(*) FROM chat.rooms") == 1
    assert await db.fetchval("SELECT id FROM chat.rooms") == room_id
    assert await db.fetchval("SELECT count(*) FROM chat.room_members") == 1
