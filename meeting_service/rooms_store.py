"""Rooms: creating one with a unique code, reading, listing. A code is unique by
`UNIQUE (code)`: a create whose draw is taken inserts nothing, and draws again.
(Settings and ending: room_settings_store.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from meeting_service.models import CreateRoomBody, PublicRoom, Room, RoomDetail
from meeting_service.refusals import Refusal, Refused
from meeting_service.room_codes import MAX_ATTEMPTS, CodeGenerator
from meeting_service.store import (
    ROOM_COLUMNS,
    Connection,
    Pool,
    room_detail,
    room_row,
)
from shared.auth import Identity
from shared.ids import new_id
from shared.sql_json import Json, json_object_sql
from shared.timefmt import iso_ms_sql

# --- rooms ---------------------------------------------------------------------------


def _timestamp(column: str) -> Json:
    """A Timestamp field's JSON (a NOT NULL column), as iso_ms writes it."""
    return Json(f"to_json({iso_ms_sql(column)})::text")


# The created room as the API answers it (Room, as store.room_fields reads a row),
# written by the statement (shared.sql_json).
ROOM_JSON = json_object_sql(
    Room,
    {
        "id": "id",
        "code": "code",
        "name": "name",
        "host_id": "host_id",
        "is_active": "is_active",
        "is_locked": "is_locked",
        "started_at": _timestamp("started_at"),
        "created_at": _timestamp("created_at"),
        "updated_at": _timestamp("updated_at"),
        "host": {
            "id": "host_id",
            "display_name": "host_display_name",
            "avatar_url": "host_avatar_url",
        },
        "settings": {
            "id": "settings_id",
            "room_id": "id",
            "allow_chat": "allow_chat",
            "allow_screen_share": "allow_screen_share",
            "allow_guest_access": "allow_guest_access",
            "waiting_room": "waiting_room",
            "mute_participants_on_join": "mute_participants_on_join",
            "max_participants": "max_participants",
        },
    },
)
# The columns a create writes, and the host's row made from the room it returned.
_INSERT_ROOM = (
    "INSERT INTO rooms (id, code, name, host_id, host_display_name, host_avatar_url,"
    " settings_id, waiting_room, max_participants)"
)
_INSERT_HOST = (
    " host AS ("
    " INSERT INTO participants (id, room_id, user_id, display_name, avatar_url, is_host,"
    " is_guest, status, ever_joined, joined_at)"
)
_HOST_OF_ROOM = (
    " room.id, room.host_id, room.host_display_name, room.host_avatar_url, true, false,"
    " 'joined', true, room.created_at"
)
# One statement, atomic by itself (no BEGIN and COMMIT round trips) or inside the
# caller's transaction (Idempotency-Key): the room, and its host in it from the start
# (counting toward capacity). A code already taken, by a committed room or by a
# concurrent create that then commits, inserts nothing: no row, and the next attempt
# draws again. No error either, so the caller's transaction stays usable.
CREATE_ROOM = (
    f"WITH room AS ({_INSERT_ROOM}"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (code) DO NOTHING"
    f" RETURNING {ROOM_COLUMNS}),"
    f"{_INSERT_HOST} SELECT $10,{_HOST_OF_ROOM} FROM room)"
    f" SELECT convert_to({ROOM_JSON}, 'UTF8') AS room FROM room"
)
# The keyless creates of concurrent requests, as one statement (shared.batching):
# CREATE_ROOM over arrays, one element per create. A code taken (by a room, or by
# an earlier element of the same batch) inserts nothing, as above: its create has
# no row back, and draws again alone.
CREATE_ROOMS = (
    f"WITH room AS ({_INSERT_ROOM}"
    " SELECT id, code, name, host_id, host_display_name, host_avatar_url, settings_id,"
    " waiting_room, max_participants"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::text[], $8::boolean[], $9::integer[])"
    " AS new (id, code, name, host_id, host_display_name, host_avatar_url, settings_id,"
    " waiting_room, max_participants)"
    " ON CONFLICT (code) DO NOTHING"
    f" RETURNING {ROOM_COLUMNS}),"
    f"{_INSERT_HOST} SELECT new.participant_id,{_HOST_OF_ROOM}"
    " FROM room JOIN unnest($1::text[], $10::text[]) AS new (room_id, participant_id)"
    " ON new.room_id = room.id)"
    f" SELECT id, convert_to({ROOM_JSON}, 'UTF8') AS room FROM room"
)


@dataclass(frozen=True, slots=True)
class NewRoom:
    """A create without an Idempotency-Key: who asks, and for what."""

    who: Identity
    body: CreateRoomBody


def _values(who: Identity, body: CreateRoomBody, code: str) -> tuple[Any, ...]:
    """A create's parameters, in the statements' order, its ids drawn."""
    return (
        new_id(),
        code,
        body.name,
        who.user_id,
        who.display_name,
        who.avatar_url,
        new_id(),
        body.waiting_room,
        body.max_participants,
        new_id(),
    )


async def create_room(
    conn: Connection,
    who: Identity,
    body: CreateRoomBody,
    generate_code: CodeGenerator,
    attempts: int = MAX_ATTEMPTS,
) -> bytes:
    """A room with a unique code, drawn again (up to `attempts` draws) while taken:
    the Room's JSON, as `json_model` would write it."""
    for _ in range(attempts):
        row = await conn.fetchrow(CREATE_ROOM, *_values(who, body, generate_code()))
        if row is not None:
            room: bytes = row["room"]
            return room
    raise Refused(Refusal.CODES_EXHAUSTED)


async def create_room_alone(
    pool: Pool, generate_code: CodeGenerator, new: NewRoom, attempts: int = MAX_ATTEMPTS
) -> bytes:
    """`create_room` on a connection of the pool's, for as long as it runs."""
    async with pool.acquire() as conn:
        return await create_room(conn, new.who, new.body, generate_code, attempts)


async def create_rooms(
    pool: Pool, generate_code: CodeGenerator, news: Sequence[NewRoom]
) -> list[bytes | Exception]:
    """`create_room_alone` of each, in their order, in one statement: each room's
    JSON. A create whose code was taken then draws again alone, with the draws it
    has left (its answer, or its refusal)."""
    values = [_values(new.who, new.body, generate_code()) for new in news]
    # Sorted by code: concurrent batches take their codes' index entries in one
    # order, so two of them never wait for each other's.
    columns = zip(*sorted(values, key=itemgetter(1)), strict=True)
    rows = await pool.fetch(CREATE_ROOMS, *(list(column) for column in columns))
    created: dict[str, bytes] = {row["id"]: row["room"] for row in rows}
    outcomes: list[bytes | Exception] = []
    for new, (room_id, *_) in zip(news, values, strict=True):
        if room_id in created:
            outcomes.append(created[room_id])
            continue
        try:
            outcomes.append(await create_room_alone(pool, generate_code, new, MAX_ATTEMPTS - 1))
        except Exception as exc:  # its own: the batch committed, and must not run again
            outcomes.append(exc)
    return outcomes


async def get_room(pool: Pool, room_id: str) -> RoomDetail:
    async with pool.acquire() as conn:
        return room_detail(await room_row(conn, room_id))


# What PublicRoom shows, and no more, as its JSON written by Postgres from the
# model's fields (shared.sql_json): the service passes the bytes on.
PUBLIC_ROOM_JSON = json_object_sql(
    PublicRoom,
    {
        "id": "id",
        "code": "code",
        "name": "name",
        "is_active": "is_active",
        "is_locked": "is_locked",
        "host": {
            "id": "host_id",
            "display_name": "host_display_name",
            "avatar_url": "host_avatar_url",
        },
        "settings": {
            "waiting_room": "waiting_room",
            "allow_guest_access": "allow_guest_access",
        },
    },
)
PUBLIC_ROOM_BY_CODE = f"SELECT convert_to({PUBLIC_ROOM_JSON}, 'UTF8') FROM rooms WHERE code = $1"
# The lookups of concurrent requests, as one statement (shared.batching): one index
# probe per code, each room's JSON written as the lone lookup writes it.
PUBLIC_ROOMS_BY_CODES = (
    f"SELECT code, convert_to({PUBLIC_ROOM_JSON}, 'UTF8') AS room"
    " FROM rooms WHERE code = ANY($1::text[])"
)


async def room_by_code(pool: Pool, code: str) -> bytes:
    """The room's PublicRoom, as JSON."""
    body: bytes | None = await pool.fetchval(PUBLIC_ROOM_BY_CODE, code)
    if body is None:
        raise Refused(Refusal.ROOM_NOT_FOUND)
    return body


async def rooms_by_codes(pool: Pool, codes: Sequence[str]) -> list[bytes | Refused]:
    """`room_by_code` of each code, in their order, in one statement: a room's JSON,
    or the refusal of a code no room has (a code asked twice is answered twice)."""
    rows = await pool.fetch(PUBLIC_ROOMS_BY_CODES, list(set(codes)))
    found: dict[str, bytes] = {row["code"]: row["room"] for row in rows}
    return [found[code] if code in found else Refused(Refusal.ROOM_NOT_FOUND) for code in codes]


RoomPosition = tuple[datetime, str]


async def my_rooms(
    pool: Pool, user_id: str, limit: int, after: RoomPosition | None
) -> tuple[list[RoomDetail], RoomPosition | None]:
    """Rooms the user hosts or was ever admitted to, newest first, by keyset."""
    after_at, after_id = after if after is not None else (None, None)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {ROOM_COLUMNS} FROM rooms"
            """
            WHERE (host_id = $1
                   OR id IN (SELECT p.room_id FROM participants p
                             WHERE p.user_id = $1 AND p.ever_joined))
              AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::text))
            ORDER BY created_at DESC, id DESC
            LIMIT $4
            """,
            user_id,
            after_at,
            after_id,
            limit + 1,
        )
    page = rows[:limit]
    more = len(rows) > limit
    last = (page[-1]["created_at"], page[-1]["id"]) if more else None
    return [room_detail(row) for row in page], last
