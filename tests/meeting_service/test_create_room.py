"""POST /rooms, to the letter of the create document."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import string
from collections import Counter

import pytest

from meeting_service.models import Room
from meeting_service.room_codes import new_room_code
from meeting_service.store import ROOM_COLUMNS, room_fields
from shared.bodies import json_model
from shared.ids import RandomBytes, RandomText, new_id
from tests.conftest import bearer
from tests.meeting_service.conftest import CODE, ID, TIMESTAMP, create_room

ROOM_KEYS = {
    "id",
    "code",
    "name",
    "hostId",
    "isActive",
    "isLocked",
    "startedAt",
    "createdAt",
    "updatedAt",
    "host",
    "settings",
}


async def test_defaults(api, make_token, db):
    token = make_token("alice", user_id="cuseralice", name="Alice Smith")
    room = await create_room(api, token)
    assert set(room) == ROOM_KEYS
    assert ID.match(room["id"])
    assert CODE.match(room["code"])
    assert room["name"] == "Meeting Room"
    assert room["hostId"] == "cuseralice"
    assert room["isActive"] is True
    assert room["isLocked"] is False
    for key in ("startedAt", "createdAt", "updatedAt"):
        assert TIMESTAMP.match(room[key]), room[key]
    assert room["startedAt"] == room["createdAt"] == room["updatedAt"]
    assert room["host"] == {"id": "cuseralice", "displayName": "Alice Smith", "avatarUrl": None}
    settings = room["settings"]
    assert ID.match(settings["id"])
    assert settings == {
        "id": settings["id"],
        "roomId": room["id"],
        "allowChat": True,
        "allowScreenShare": True,
        "allowGuestAccess": True,
        "waitingRoom": False,
        "muteParticipantsOnJoin": False,
        "maxParticipants": 50,
    }
    assert settings["id"] != room["id"]
    stored = await db.fetchrow("SELECT code, host_id FROM meeting.rooms WHERE id = $1", room["id"])
    assert dict(stored) == {"code": room["code"], "host_id": "cuseralice"}


async def test_the_document_example(api, make_token):
    token = make_token("john", name="John Doe", picture="https://example.com/avatar.jpg")
    room = await create_room(api, token, name="Team Standup", waitingRoom=True, maxParticipants=10)
    assert room["name"] == "Team Standup"
    assert room["host"] == {
        "id": "u_john",
        "displayName": "John Doe",
        "avatarUrl": "https://example.com/avatar.jpg",
    }
    assert room["settings"]["waitingRoom"] is True
    assert room["settings"]["maxParticipants"] == 10
    assert room["settings"]["allowChat"] is True


async def test_empty_body_means_defaults_and_bare_token_works(api, make_token):
    response = await api.post("/rooms", headers={"Authorization": make_token("alice")})
    assert response.status == 201
    assert (await response.json())["name"] == "Meeting Room"


async def test_name_is_trimmed_and_bounds_are_inclusive(api, make_token):
    token = make_token()
    assert (await create_room(api, token, name="  Standup  "))["name"] == "Standup"
    assert (await create_room(api, token, name="x" * 100))["name"] == "x" * 100
    room = await create_room(api, token, name="y", maxParticipants=2)
    assert room["settings"]["maxParticipants"] == 2
    room = await create_room(api, token, maxParticipants=100)
    assert room["settings"]["maxParticipants"] == 100


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": ""}, "name", "String should have at least 1 character"),
        ({"name": "   "}, "name", "Value error, must not be blank"),
        ({"name": "x" * 101}, "name", "Value error, must be at most 100 characters"),
        ({"name": 5}, "name", "Input should be a valid string"),
        ({"name": None}, "name", "Input should be a valid string"),
        ({"waitingRoom": "yes"}, "waitingRoom", "Input should be a valid boolean"),
        ({"waitingRoom": 1}, "waitingRoom", "Input should be a valid boolean"),
        ({"maxParticipants": 10.5}, "maxParticipants", "Input should be a valid integer"),
        ({"maxParticipants": 10.5}, "maxParticipants", "Input should be a valid integer"),
        ({"maxParticipants": "10"}, "maxParticipants", "Input should be a valid integer"),
        ({"maxParticipants": True}, "maxParticipants", "Input should be a valid integer"),
        ({"maxParticipants": 1}, "maxParticipants", "Input should be greater than or equal to 2"),
        ({"maxParticipants": 101}, "maxParticipants", "Input should be less than or equal to 100"),
        ({"hostId": "someone"}, "hostId", "Extra inputs are not permitted"),
        ({"waiting_room": True}, "waiting_room", "Extra inputs are not permitted"),
    ],
)
async def test_validation_names_the_field(api, make_token, db, body, field, message):
    response = await api.post("/rooms", json=body, headers=bearer(make_token()))
    assert response.status == 400
    assert await response.json() == {
        "error": f"{field}: {message}",
        "code": "invalid_fields",
        "details": [{"field": field, "message": message}],
    }
    assert await db.fetchval("SELECT count(*) FROM meeting.rooms") == 0


@pytest.mark.parametrize("raw", ["[]", '"room"', "12", "{not json", "null", " ", "\r\n\t "])
async def test_a_body_that_is_not_an_object(api, make_token, db, raw):
    headers = {**bearer(make_token()), "Content-Type": "application/json"}
    response = await api.post("/rooms", data=raw, headers=headers)
    assert response.status == 400
    assert await response.json() == {
        "error": "request body must be a JSON object",
        "code": "invalid_body",
    }
    assert await db.fetchval("SELECT count(*) FROM meeting.rooms") == 0


async def test_no_token_or_a_bad_one_is_401(api, make_token):
    for headers in ({}, {"Authorization": "Bearer nonsense"}, bearer(make_token(ttl_s=-60))):
        response = await api.post("/rooms", json={}, headers=headers)
        assert response.status == 401
        assert await response.json() == {"error": "unauthorized", "code": "unauthorized"}


async def test_guests_cannot_create_rooms(api, make_token, db):
    response = await api.post("/rooms", json={}, headers=bearer(make_token("g", role="guest")))
    assert response.status == 401
    assert await response.json() == {"error": "unauthorized", "code": "unauthorized"}
    assert await db.fetchval("SELECT count(*) FROM meeting.rooms") == 0


async def test_the_hosts_new_profile_shows_on_rooms_created_after_it(api, make_token):
    before = await create_room(api, make_token("alice", name="Alice"))
    renamed = make_token("alice", name="Alice B.", picture="https://img.example/a.png")
    after = await create_room(api, renamed)
    assert before["host"] == {"id": "u_alice", "displayName": "Alice", "avatarUrl": None}
    assert after["host"] == {
        "id": "u_alice",
        "displayName": "Alice B.",
        "avatarUrl": "https://img.example/a.png",
    }
    fetched = await (await api.get(f"/rooms/{after['id']}", headers=bearer(renamed))).json()
    assert fetched["host"] == after["host"]


async def test_codes_are_unique_across_rooms(api, make_token):
    token = make_token()
    codes = {(await create_room(api, token))["code"] for _ in range(20)}
    assert len(codes) == 20


async def test_a_generator_that_always_collides_gives_up_after_ten_draws(
    make_service, make_token, db
):
    draws = []

    def always_the_same() -> str:
        draws.append(1)
        return "abc-def-ghi"

    client = await make_service(code_generator=always_the_same)
    first = await create_room(client, make_token())
    assert first["code"] == "abc-def-ghi"
    draws.clear()
    response = await client.post("/rooms", json={"name": "Second"}, headers=bearer(make_token()))
    assert response.status == 400
    assert await response.json() == {
        "error": "Failed to generate unique room code after 10 attempts",
        "code": "room_codes_exhausted",
    }
    assert len(draws) == 10
    assert await db.fetchval("SELECT count(*) FROM meeting.rooms") == 1
    assert await db.fetchval("SELECT count(*) FROM meeting.participants") == 1


async def test_a_collision_draws_again(make_service, make_token):
    sequence = iter(["aaa-aaa-aaa", "aaa-aaa-aaa", "aaa-aaa-aaa", "bbb-bbb-bbb"])
    client = await make_service(code_generator=lambda: next(sequence))
    assert (await create_room(client, make_token()))["code"] == "aaa-aaa-aaa"
    assert (await create_room(client, make_token()))["code"] == "bbb-bbb-bbb"


async def test_a_collision_inside_an_idempotent_request_draws_again(make_service, make_token, db):
    """With an Idempotency-Key the create runs inside the key's transaction: a taken
    code must not abort it, and the retry gets the same room."""
    sequence = iter(["aaa-aaa-aaa", "aaa-aaa-aaa", "bbb-bbb-bbb"])
    client = await make_service(code_generator=lambda: next(sequence))
    assert (await create_room(client, make_token()))["code"] == "aaa-aaa-aaa"
    headers = {**bearer(make_token()), "Idempotency-Key": "once"}
    first = await client.post("/rooms", json={"name": "Second"}, headers=headers)
    assert first.status == 201
    room = await first.json()
    assert room["code"] == "bbb-bbb-bbb"
    again = await client.post("/rooms", json={"name": "Second"}, headers=headers)
    assert (again.status, await again.json()) == (201, room)
    assert await db.fetchval("SELECT count(*) FROM meeting.rooms") == 2
    host = await db.fetchrow(
        "SELECT user_id, is_host, status FROM meeting.participants WHERE room_id = $1",
        room["id"],
    )
    assert dict(host) == {"user_id": room["hostId"], "is_host": True, "status": "joined"}


async def test_simultaneous_creates_get_distinct_codes(make_service, make_token, db):
    """Every create first draws the same code, so they race for it in Postgres."""
    fresh = (f"{a}{a}{a}-{b}{b}{b}-zzz" for a, b in itertools.product("abcdefgh", repeat=2))
    drawn: set[int] = set()

    def contested() -> str:
        # The first draw of each task returns the contested code; later draws are fresh.
        task = id(asyncio.current_task())
        if task not in drawn:
            drawn.add(task)
            return "xyz-xyz-xyz"
        return next(fresh)

    client = await make_service(code_generator=contested)
    token = make_token()
    responses = await asyncio.gather(
        *(client.post("/rooms", json={}, headers=bearer(token)) for _ in range(8))
    )
    assert [r.status for r in responses] == [201] * 8
    codes = [(await r.json())["code"] for r in responses]
    assert len(set(codes)) == 8
    assert codes.count("xyz-xyz-xyz") == 1
    assert await db.fetchval("SELECT count(DISTINCT code) FROM meeting.rooms") == 8


def test_random_bytes_are_handed_out_once_and_a_forked_child_reads_its_own():
    source = RandomBytes(size=64)
    taken = [source.take(10) for _ in range(100)]  # across 16 reads of 64 bytes
    assert all(len(chunk) == 10 for chunk in taken)
    assert len(set(taken)) == 100
    assert len(source.take(100)) == 100  # more than a read: a read of its own
    source.take(1)  # something left buffered, which the child must not reuse
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.write(write, source.take(16))
        os._exit(0)
    os.close(write)
    from_child = os.read(read, 16)
    os.close(read)
    os.waitpid(child, 0)
    assert len(from_child) == 16
    assert from_child != source.take(16)


def test_ids_and_codes_use_every_character_in_every_position():
    """One read of random bytes per id (or code), mapped onto its alphabet: every
    position takes every character, each as often as the others."""
    ids = [new_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"c[0-9a-z]{24}", i) for i in ids)
    for position in range(1, 25):
        assert {i[position] for i in ids} == set(string.digits + string.ascii_lowercase)
    codes = [new_room_code() for _ in range(5_000)]
    assert all(CODE.match(code) for code in codes)
    for position in (0, 1, 2, 4, 5, 6, 8, 9, 10):
        assert {code[position] for code in codes} == set(string.ascii_lowercase)
    # 96 characters: the bytes from 192 up are dropped; folded onto the alphabet
    # instead, they would make its first 64 characters twice as likely as the rest.
    alphabet = "".join(chr(code) for code in range(32, 128))
    counts = Counter(RandomText(alphabet, 96_000)())
    assert set(counts) == set(alphabet)
    assert all(850 < n < 1150 for n in counts.values()), counts


@pytest.mark.parametrize(
    ("name", "picture"),
    [("Alice Smith", None), ('Zoë "Z" \\ Ω 😀', 'https://example.com/a.jpg?x=1&y="2"')],
)
async def test_the_answer_is_the_room_model_written_by_the_database(
    api, make_token, db, name, picture
):
    """The statement writes Room's JSON (shared.sql_json): the very bytes and headers
    the model's own serialization of the stored row is answered with."""
    token = make_token("alice", user_id="cuseralice", name=name, picture=picture)
    body = {"name": f"Standup of {name}", "waitingRoom": True, "maxParticipants": 7.0}
    async with api.post("/rooms", json=body, headers=bearer(token)) as response:
        assert response.status == 201
        raw = await response.read()
        content_type = response.headers["Content-Type"]
    row = await db.fetchrow(f"SELECT {ROOM_COLUMNS} FROM meeting.rooms")  # noqa: S608
    expected = json_model(Room(**room_fields(row)), status=201)
    assert raw == expected.body
    assert content_type == expected.headers["Content-Type"] == "application/json; charset=utf-8"
