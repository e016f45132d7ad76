"""Rooms: creating one with a unique code, reading, listing. A code is unique by
`UNIQUE (code)`: a create whose draw is taken inserts nothing, and draws again.
(Settings and ending: room_settings_store.)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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
# One statement, atomic by itself (no BEGIN and COMMIT round trips) or inside the
# caller's transaction (Idempotency-Key): the room, and its host in it from the start
# (counting toward capacity). A code already taken, by a committed room or by a
# concurrent create that then commits, inserts nothing: no row, and the next attempt
# draws again. No error either, so the caller's transaction stays usable.
CREATE_ROOM = (
    "WITH room AS ("
    " INSERT INTO rooms (id, code, name, host_id, host_display_name, host_avatar_url,"
    " settings_id, waiting_room, max_participants)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (code) DO NOTHING"
    f" RETURNING {ROOM_COLUMNS}),"
    " host AS ("
    " INSERT INTO participants (id, room_id, user_id, display_name, avatar_url, is_host,"
    " is_guest, status, ever_joined, joined_at)"
    " SELECT $10, id, host_id, host_display_name, host_avatar_url, true, false, 'joined',"
    " true, created_at FROM room)"
    f" SELECT convert_to({ROOM_JSON}, 'UTF8') AS room FROM room"
)


async def create_room(
    conn: Connection, who: Identity, body: CreateRoomBody, generate_code: CodeGenerator
) -> bytes:
    """A room with a unique code, drawn again (up to MAX_ATTEMPTS) while taken: the
    Room's JSON, as `json_model` would write it."""
    for _ in range(MAX_ATTEMPTS):
        row = await conn.fetchrow(
            CREATE_ROOM,
            new_id(),
            generate_code(),
            body.name,
            who.user_id,
            who.display_name,
            who.avatar_url,
            new_id(),
            body.waiting_room,
            body.max_participants,
            new_id(),
        )
        if row is not None:
            room: bytes = row["room"]
            return room
    raise Refused(Refusal.CODES_EXHAUSTED)


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
