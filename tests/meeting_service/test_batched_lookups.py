"""GET /rooms/code/{code} under load: the lookups arriving together are one statement
(rooms_store.rooms_by_codes, through meeting_service.batches), and each request gets
the answer it would have had alone, byte for byte."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from meeting_service import rooms_store
from meeting_service.batches import ROOM_BY_CODE_KEY
from meeting_service.refusals import Refusal, Refused
from shared.db import POOL_KEY, migrate
from tests.chat_service.test_plans import MODES, explain, scan_of
from tests.meeting_service.conftest import create_room
from tests.meeting_service.test_room_json import NAMES

MIGRATIONS = Path(rooms_store.__file__).parent / "migrations"
UNKNOWN = ("zzz-zzz-zzz", "abc-abc-abc")
NOT_FOUND = {"error": "Room not found", "code": "room_not_found"}


async def rooms_with_every_kind_of_name(
    service: TestClient, make_token: Any, db: asyncpg.Connection
) -> list[str]:
    """A room per awkward name (quotes, control characters, emoji...), and their codes."""
    codes = []
    for index, name in enumerate(NAMES):
        room = await create_room(service, make_token(f"host{index}", name=name[::-1]), name="x")
        await db.execute(
            "UPDATE meeting.rooms SET name = $2, host_avatar_url = $3, is_locked = $4"
            " WHERE id = $1",
            room["id"],
            name,
            None if index % 2 else f"https://img.example/{name}.png",
            bool(index % 3),
        )
        codes.append(room["code"])
    return codes


def outcome(result: bytes | Refused) -> bytes | Refusal:
    return result.refusal if isinstance(result, Refused) else result


async def test_the_batch_statement_answers_each_code_as_the_lone_statement_does(
    service: TestClient, make_token: Any, db: asyncpg.Connection
) -> None:
    codes = await rooms_with_every_kind_of_name(service, make_token, db)
    pool = service.server.app[POOL_KEY]
    alone = {code: await rooms_store.room_by_code(pool, code) for code in codes}
    # Misses and codes asked twice, in any order: each item its own answer, in order.
    asked = [codes[2], UNKNOWN[0], *codes, codes[2], UNKNOWN[1], codes[0], UNKNOWN[0]]
    answers = await rooms_store.rooms_by_codes(pool, asked)
    assert [outcome(a) for a in answers] == [
        alone.get(code, Refusal.ROOM_NOT_FOUND) for code in asked
    ]
    # Each miss is a refusal of its own (each request raises its own exception).
    misses = [a for a in answers if isinstance(a, Refused)]
    assert len({id(miss) for miss in misses}) == len(misses) == 3
    assert [outcome(a) for a in await rooms_store.rooms_by_codes(pool, UNKNOWN)] == [
        Refusal.ROOM_NOT_FOUND
    ] * 2


async def test_simultaneous_lookups_each_get_their_own_answer(
    api: TestClient, make_token: Any, db: asyncpg.Connection
) -> None:
    codes = await rooms_with_every_kind_of_name(api, make_token, db)
    expected = {}
    for code in codes:
        async with api.get(f"/rooms/code/{code}") as response:
            assert response.status == 200
            expected[code] = await response.read()
    asked = [(codes + list(UNKNOWN))[i % (len(codes) + 2)] for i in range(40)]
    # Upper case and spaces: the code is normalised before it is looked up.
    asked[7] = f" {asked[7].upper()} "

    async def lookup(code: str) -> tuple[int, bytes]:
        async with api.get(f"/rooms/code/{code}") as response:
            return response.status, await response.read()

    answers = await asyncio.gather(*(lookup(code) for code in asked))
    for code, (status, body) in zip(asked, answers, strict=True):
        code = code.strip().lower()
        if code in expected:
            assert (status, body) == (200, expected[code]), code
        else:
            assert status == 404, code
            assert json.loads(body) == NOT_FOUND


async def test_the_lookups_submitted_together_go_as_one_statement(
    service: TestClient, make_token: Any, db: asyncpg.Connection
) -> None:
    codes = await rooms_with_every_kind_of_name(service, make_token, db)
    batcher = service.server.app[ROOM_BY_CODE_KEY]
    batches: list[Sequence[str]] = []
    run_many = batcher.run_many

    async def counted(items: Sequence[str]) -> Any:
        batches.append(items)
        return await run_many(items)

    batcher.run_many = counted
    asked = [*codes, UNKNOWN[0], *codes]
    answers = await asyncio.gather(
        *(batcher.submit(code) for code in asked), return_exceptions=True
    )
    assert batches == [asked]
    pool = service.server.app[POOL_KEY]
    for code, answer in zip(asked, answers, strict=True):
        if code == UNKNOWN[0]:
            assert isinstance(answer, Refused)
            assert answer.refusal is Refusal.ROOM_NOT_FOUND
        else:
            assert answer == await rooms_store.room_by_code(pool, code)
    # Counted in the service's metrics: one statement of 11 items; none alone so far.
    metrics = await (await service.get("/metrics")).text()
    assert 'db_batches_total{batch="room_by_code"} 1.0' in metrics
    assert f'db_batched_items_total{{batch="room_by_code"}} {len(asked)}.0' in metrics
    assert 'db_lone_items_total{batch="room_by_code"} 0.0' in metrics


async def test_the_batch_statement_probes_the_unique_index_on_code(
    db: asyncpg.Connection,
) -> None:
    await migrate(db, "meeting", MIGRATIONS)
    await db.execute("SET search_path TO meeting")
    # 17,576 rooms (codes aaa-aaa-aaa to zzz-zzz-zzz): big enough for the planner to choose.
    await db.execute(
        "INSERT INTO rooms (id, code, name, host_id, host_display_name, settings_id)"
        " SELECT 'r' || i, c || '-' || c || '-' || c, 'room ' || i, 'host', 'Host', 's' || i"
        " FROM generate_series(0, 17575) i,"
        " LATERAL (SELECT chr(97 + i / 676) || chr(97 + i / 26 % 26) || chr(97 + i % 26)) AS l(c)"
    )
    await db.execute("ANALYZE rooms")
    for mode in MODES:
        for codes in (["abc-abc-abc"], ["abc-abc-abc", "zzz-zzz-zzz", "nop-nop-nop", "bad"]):
            literal = "{" + ",".join(codes) + "}"
            plan = await explain(db, rooms_store.PUBLIC_ROOMS_BY_CODES, (literal,), mode)
            scan = scan_of(plan, "rooms")
            assert scan["Node Type"] == "Index Scan", scan
            assert scan["Index Name"] == "rooms_code_key", scan
            assert "code = ANY" in scan["Index Cond"], scan
        plan = await explain(db, rooms_store.PUBLIC_ROOM_BY_CODE, ("abc-abc-abc",), mode)
        assert scan_of(plan, "rooms")["Index Name"] == "rooms_code_key"
