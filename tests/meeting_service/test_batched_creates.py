"""POST /rooms without an Idempotency-Key under load: the creates arriving together are
one statement (rooms_store.create_rooms, through meeting_service.batches). Each request
gets the room it would have had alone, byte for byte, stored once with its host; a
code taken (by a room, or by another create of the same batch) is drawn again."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from meeting_service import rooms_store
from meeting_service.batches import NEW_ROOM_KEY
from meeting_service.models import CreateRoomBody, Room
from meeting_service.refusals import Refusal, Refused
from meeting_service.room_codes import MAX_ATTEMPTS
from meeting_service.store import ROOM_COLUMNS, room_fields
from shared.auth import Identity
from shared.bodies import json_model
from shared.db import POOL_KEY
from tests.conftest import bearer
from tests.meeting_service.conftest import ServiceFactory

NAMES = ["plain", 'Zoë "Z" \\ Ω 😀', "日本語 </script> ' quotes"]


def who(index: int) -> Identity:
    return Identity(
        user_id=f"u_{index}",
        username=f"user{index}",
        display_name=f"{NAMES[index % len(NAMES)]} {index}",
        avatar_url=None if index % 2 else f'https://img.example/{index}.png?q="{index}"',
        role="user",
    )


def new_room(index: int) -> rooms_store.NewRoom:
    body = CreateRoomBody.model_validate(
        {
            "name": f"{NAMES[index % len(NAMES)]} room {index}",
            "waitingRoom": bool(index % 2),
            "maxParticipants": 2 + index,
        }
    )
    return rooms_store.NewRoom(who(index), body)


class Draws:
    """Codes drawn from a list, then fresh ones; counts the draws."""

    def __init__(self, *first: str) -> None:
        fresh = (f"{a}{a}{a}-{b}{b}{b}-xyz" for a, b in itertools.product("abcdefgh", repeat=2))
        self.codes: Iterator[str] = itertools.chain(first, fresh)
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return next(self.codes)


async def stored_room(db: asyncpg.Connection, room_id: str) -> bytes:
    """The stored row's Room, as the model writes it (json_model)."""
    row = await db.fetchrow(f"SELECT {ROOM_COLUMNS} FROM meeting.rooms WHERE id = $1", room_id)  # noqa: S608
    assert row is not None
    body = json_model(Room(**room_fields(row)), status=201).body
    assert isinstance(body, bytes)
    return body


async def assert_stored_with_their_hosts(db: asyncpg.Connection, rooms: Sequence[bytes]) -> None:
    """Each room stored once, as answered, with its host joined in it; nothing else."""
    for answer in rooms:
        room = json.loads(answer)
        assert answer == await stored_room(db, room["id"])
        hosts = await db.fetch(
            "SELECT p.user_id, p.display_name, p.avatar_url, p.is_host, p.status,"
            " p.ever_joined, p.joined_at = r.created_at AS at_creation"
            " FROM meeting.participants p JOIN meeting.rooms r ON r.id = p.room_id"
            " WHERE p.room_id = $1",
            room["id"],
        )
        assert [dict(host) for host in hosts] == [
            {
                "user_id": room["hostId"],
                "display_name": room["host"]["displayName"],
                "avatar_url": room["host"]["avatarUrl"],
                "is_host": True,
                "status": "joined",
                "ever_joined": True,
                "at_creation": True,
            }
        ]
    assert await db.fetchval("SELECT count(*) FROM meeting.rooms") == len(rooms)
    assert await db.fetchval("SELECT count(*) FROM meeting.participants") == len(rooms)


async def test_the_batch_creates_each_room_as_asked_and_draws_a_taken_code_again(
    service: TestClient, db: asyncpg.Connection
) -> None:
    pool = service.server.app[POOL_KEY]
    taken = await rooms_store.create_room_alone(pool, Draws("aaa-aaa-aaa"), new_room(9))
    # Draws: a code a room has; the same code twice in the batch; then fresh ones.
    draws = Draws("aaa-aaa-aaa", "bbb-bbb-bbb", "bbb-bbb-bbb", "ccc-ccc-ccc", "aaa-aaa-aaa")
    news = [new_room(index) for index in range(5)]
    answers = await rooms_store.create_rooms(pool, draws, news)
    assert all(isinstance(answer, bytes) for answer in answers), answers
    rooms = [json.loads(answer) for answer in answers if isinstance(answer, bytes)]
    for room, new in zip(rooms, news, strict=True):
        assert room["name"] == new.body.name
        assert room["settings"]["maxParticipants"] == new.body.max_participants
        assert room["settings"]["waitingRoom"] is new.body.waiting_room
        assert room["host"] == {
            "id": new.who.user_id,
            "displayName": new.who.display_name,
            "avatarUrl": new.who.avatar_url,
        }
    # Five draws for the batch, one more for each of the three whose code was taken.
    assert draws.count == 8
    codes = [room["code"] for room in rooms]
    assert codes[0] != "aaa-aaa-aaa" and codes[4] != "aaa-aaa-aaa"
    assert codes[3] == "ccc-ccc-ccc"
    assert codes[1:3].count("bbb-bbb-bbb") == 1
    assert len(set(codes)) == 5
    await assert_stored_with_their_hosts(db, [taken, *answers])  # type: ignore[list-item]


async def test_a_create_whose_codes_are_all_taken_is_refused_after_ten_draws_in_all(
    service: TestClient, db: asyncpg.Connection
) -> None:
    pool = service.server.app[POOL_KEY]
    taken = await rooms_store.create_room_alone(pool, Draws("aaa-aaa-aaa"), new_room(9))
    draws = Draws(*["aaa-aaa-aaa"] * (1 + MAX_ATTEMPTS), "bbb-bbb-bbb")
    answers = await rooms_store.create_rooms(pool, draws, [new_room(0), new_room(1)])
    # The first: its batch draw and nine more, all taken; the second's retry then draws anew.
    assert isinstance(answers[0], Refused)
    assert answers[0].refusal is Refusal.CODES_EXHAUSTED
    assert isinstance(answers[1], bytes)
    assert json.loads(answers[1])["code"] == "bbb-bbb-bbb"
    assert draws.count == 2 + (MAX_ATTEMPTS - 1) + 1
    await assert_stored_with_their_hosts(db, [taken, answers[1]])


async def test_a_redraw_postgres_refuses_fails_alone_and_the_batch_is_not_run_again(
    service: TestClient, db: asyncpg.Connection
) -> None:
    """The batch committed before its taken codes are drawn again: an error then is
    that create's answer, not the batch's (which would run every create again)."""
    pool = service.server.app[POOL_KEY]
    taken = await rooms_store.create_room_alone(pool, Draws("aaa-aaa-aaa"), new_room(9))
    # The redraw breaks rooms_code_format: Postgres refuses that statement.
    draws = Draws("bbb-bbb-bbb", "aaa-aaa-aaa", "ccc-ccc-ccc", "not a code")
    answers = await rooms_store.create_rooms(pool, draws, [new_room(0), new_room(1), new_room(2)])
    assert isinstance(answers[1], asyncpg.CheckViolationError)
    assert [json.loads(answers[i])["code"] for i in (0, 2)] == ["bbb-bbb-bbb", "ccc-ccc-ccc"]
    assert draws.count == 4
    await assert_stored_with_their_hosts(db, [taken, answers[0], answers[2]])  # type: ignore[list-item]


async def test_simultaneous_creates_each_get_their_own_room(
    api: TestClient, make_token: Any, db: asyncpg.Connection
) -> None:
    tokens = [make_token(f"user{i}", name=who(i).display_name) for i in range(8)]

    async def create(index: int) -> tuple[int, bytes]:
        body: dict[str, Any] = {"name": f"room {index}", "maxParticipants": 2 + index}
        if index % 10 == 3:
            body["maxParticipants"] = 1  # refused: stores nothing
        headers = bearer(tokens[index % len(tokens)])
        async with api.post("/rooms", json=body, headers=headers) as response:
            return response.status, await response.read()

    answers = await asyncio.gather(*(create(index) for index in range(40)))
    created = []
    for index, (status, body) in enumerate(answers):
        if index % 10 == 3:
            assert status == 400, body
            assert json.loads(body)["code"] == "invalid_fields"
            continue
        assert status == 201, body
        room = json.loads(body)
        assert room["name"] == f"room {index}"
        assert room["settings"]["maxParticipants"] == 2 + index
        assert room["hostId"] == f"u_user{index % len(tokens)}"
        created.append(body)
    assert len({json.loads(body)["code"] for body in created}) == 36
    await assert_stored_with_their_hosts(db, created)


async def test_creates_submitted_together_go_as_one_statement_even_on_one_code(
    make_service: ServiceFactory, db: asyncpg.Connection
) -> None:
    """Every create of the batch first draws the same code: one gets it, in the
    statement; the others draw again, alone."""
    draws = Draws(*["xyz-xyz-xyz"] * 12)
    service = await make_service(code_generator=draws)
    batcher = service.server.app[NEW_ROOM_KEY]
    batches: list[Sequence[rooms_store.NewRoom]] = []
    run_many = batcher.run_many

    async def counted(items: Sequence[rooms_store.NewRoom]) -> Any:
        batches.append(items)
        return await run_many(items)

    batcher.run_many = counted
    news = [new_room(index) for index in range(6)]
    answers = await asyncio.gather(*(batcher.submit(new) for new in news))
    assert batches == [news]
    codes = [json.loads(answer)["code"] for answer in answers]
    assert codes.count("xyz-xyz-xyz") == 1
    assert len(set(codes)) == 6
    await assert_stored_with_their_hosts(db, answers)
    metrics = await (await service.get("/metrics")).text()
    assert 'db_batches_total{batch="create_room"} 1.0' in metrics
    assert 'db_batched_items_total{batch="create_room"} 6.0' in metrics
    assert 'db_lone_items_total{batch="create_room"} 0.0' in metrics


async def test_keyed_creates_among_keyless_ones_are_replayed(
    api: TestClient, make_token: Any, db: asyncpg.Connection
) -> None:
    token = make_token("alice")

    async def create(index: int) -> tuple[int, bytes]:
        headers = bearer(token)
        if index % 2:
            headers["Idempotency-Key"] = f"key {index}"
        async with api.post("/rooms", json={"name": f"room {index}"}, headers=headers) as response:
            return response.status, await response.read()

    first = await asyncio.gather(*(create(index) for index in range(20)))
    assert [status for status, _ in first] == [201] * 20
    again = await asyncio.gather(*(create(index) for index in range(1, 20, 2)))
    assert again == first[1::2]
    assert await db.fetchval("SELECT count(*) FROM meeting.rooms") == 20
    assert await db.fetchval("SELECT count(*) FROM meeting.participants") == 20
