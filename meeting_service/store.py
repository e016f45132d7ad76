"""The meeting service's SQL: rooms, the steps the other stores share, live events.
Rules that must hold under concurrency (unique codes, capacity) are decided inside
one transaction holding the room's row lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from meeting_service.models import (
    CreateRoomBody,
    Host,
    Message,
    Participant,
    ParticipantStatus,
    PublicRoom,
    PublicSettings,
    Room,
    RoomDetail,
    RoomSettings,
)
from meeting_service.refusals import Refusal, Refused
from meeting_service.room_codes import MAX_ATTEMPTS, CodeGenerator
from shared.auth import Identity
from shared.db import Conn
from shared.ids import new_id
from shared.realtime import Event, Publisher

Pool = asyncpg.Pool
Connection = Conn
Record = asyncpg.Record

CODE_CONSTRAINT = "rooms_code_key"
PRESENT = ("joined", "waiting")


# --- rows to shapes ---------------------------------------------------------------


def host_of(row: Record) -> Host:
    return Host(
        id=row["host_id"],
        display_name=row["host_display_name"],
        avatar_url=row["host_avatar_url"],
    )


def room_fields(row: Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "code": row["code"],
        "name": row["name"],
        "host_id": row["host_id"],
        "is_active": row["is_active"],
        "is_locked": row["is_locked"],
        "started_at": row["started_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "host": host_of(row),
        "settings": RoomSettings(
            id=row["settings_id"],
            room_id=row["id"],
            allow_chat=row["allow_chat"],
            allow_screen_share=row["allow_screen_share"],
            allow_guest_access=row["allow_guest_access"],
            waiting_room=row["waiting_room"],
            mute_participants_on_join=row["mute_participants_on_join"],
            max_participants=row["max_participants"],
        ),
    }


def room_detail(row: Record) -> RoomDetail:
    return RoomDetail(**room_fields(row), ended_at=row["ended_at"])


def participant(row: Record, status: ParticipantStatus | None = None) -> Participant:
    return Participant(
        id=row["id"],
        user_id=row["user_id"],
        display_name=row["display_name"],
        avatar_url=row["avatar_url"],
        is_host=row["is_host"],
        is_guest=row["is_guest"],
        status=status or row["status"],
        joined_at=row["joined_at"],
    )


def message(row: Record) -> Message:
    return Message(
        id=row["id"],
        room_id=row["room_id"],
        user_id=row["user_id"],
        display_name=row["display_name"],
        avatar_url=row["avatar_url"],
        is_guest=row["is_guest"],
        content=row["content"],
        created_at=row["created_at"],
    )


# --- shared steps inside a transaction ------------------------------------------------


async def locked_room(conn: Connection, room_id: str) -> Record:
    """The room's row, locked until commit: joins, admissions and capacity changes of
    one room take turns here, so a count read after it stays true until commit."""
    row = await conn.fetchrow("SELECT * FROM rooms WHERE id = $1 FOR UPDATE", room_id)
    if row is None:
        raise Refused(Refusal.ROOM_NOT_FOUND)
    return row


async def room_row(conn: Connection, room_id: str) -> Record:
    row = await conn.fetchrow("SELECT * FROM rooms WHERE id = $1", room_id)
    if row is None:
        raise Refused(Refusal.ROOM_NOT_FOUND)
    return row


async def shared_room(conn: Connection, room_id: str) -> Record:
    """The room's row, share-locked until commit: writers that only depend on the
    room staying as read (a chat message) run side by side, but not while the
    room ends or someone is removed."""
    row = await conn.fetchrow("SELECT * FROM rooms WHERE id = $1 FOR SHARE", room_id)
    if row is None:
        raise Refused(Refusal.ROOM_NOT_FOUND)
    return row


async def joined_count(conn: Connection, room_id: str) -> int:
    count = await conn.fetchval(
        "SELECT count(*) FROM participants WHERE room_id = $1 AND status = 'joined'", room_id
    )
    return int(count)


async def membership(conn: Connection, room_id: str, user_id: str) -> Record | None:
    return await conn.fetchrow(
        "SELECT * FROM participants WHERE room_id = $1 AND user_id = $2", room_id, user_id
    )


async def require_inside(conn: Connection, room: Record, who: Identity) -> Record | None:
    """The host always; anyone else only while joined. Returns the caller's participant row."""
    row = await membership(conn, room["id"], who.user_id)
    if room["host_id"] == who.user_id:
        return row
    if row is None or row["status"] != "joined":
        raise Refused(Refusal.NOT_IN_ROOM)
    return row


async def target_participant(conn: Connection, room_id: str, participant_id: str) -> Record:
    row = await conn.fetchrow(
        "SELECT * FROM participants WHERE id = $1 AND room_id = $2 FOR UPDATE",
        participant_id,
        room_id,
    )
    if row is None:
        raise Refused(Refusal.PARTICIPANT_NOT_FOUND)
    return row


def participant_event(kind: str, row: Record, previous: str | None = None) -> Event:
    # Small on purpose (NOTIFY payloads are limited): expand_event fills in the rest.
    event: Event = {
        "type": f"participant.{kind}",
        "roomId": row["room_id"],
        "participantId": row["id"],
        "status": row["status"],
    }
    if previous is not None:
        # Tells clients (and the event filter) whether someone left the meeting
        # or only the waiting room, which is the host's business.
        event["previousStatus"] = previous
    return event


def room_event(kind: str, room_id: str) -> Event:
    return {"type": f"room.{kind}", "roomId": room_id}


# --- rooms ---------------------------------------------------------------------------


async def create_room(
    pool: Pool, who: Identity, body: CreateRoomBody, generate_code: CodeGenerator
) -> Room:
    """Each attempt is its own transaction: a code taken by a concurrent create
    surfaces as a unique violation on commit order, and the next attempt draws again."""
    async with pool.acquire() as conn:
        for _ in range(MAX_ATTEMPTS):
            try:
                async with conn.transaction():
                    row = await conn.fetchrow(
                        """
                        INSERT INTO rooms (id, code, name, host_id, host_display_name,
                                           host_avatar_url, settings_id, waiting_room,
                                           max_participants)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                        RETURNING *
                        """,
                        new_id(),
                        generate_code(),
                        body.name,
                        who.user_id,
                        who.display_name,
                        who.avatar_url,
                        new_id(),
                        body.waiting_room,
                        body.max_participants,
                    )
                    assert row is not None
                    # The host is in the room from the start and counts toward capacity.
                    await conn.execute(
                        """
                        INSERT INTO participants (id, room_id, user_id, display_name, avatar_url,
                                                  is_host, is_guest, status, ever_joined,
                                                  joined_at)
                        VALUES ($1, $2, $3, $4, $5, true, false, 'joined', true, $6)
                        """,
                        new_id(),
                        row["id"],
                        who.user_id,
                        who.display_name,
                        who.avatar_url,
                        row["created_at"],
                    )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != CODE_CONSTRAINT:
                    raise
                continue
            return Room(**room_fields(row))
    raise Refused(Refusal.CODES_EXHAUSTED)


async def get_room(pool: Pool, room_id: str) -> RoomDetail:
    async with pool.acquire() as conn:
        return room_detail(await room_row(conn, room_id))


async def room_by_code(pool: Pool, code: str) -> PublicRoom:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM rooms WHERE code = $1", code)
    if row is None:
        raise Refused(Refusal.ROOM_NOT_FOUND)
    return PublicRoom(
        id=row["id"],
        code=row["code"],
        name=row["name"],
        is_active=row["is_active"],
        is_locked=row["is_locked"],
        host=host_of(row),
        settings=PublicSettings(
            waiting_room=row["waiting_room"], allow_guest_access=row["allow_guest_access"]
        ),
    )


RoomPosition = tuple[datetime, str]


async def my_rooms(
    pool: Pool, user_id: str, limit: int, after: RoomPosition | None
) -> tuple[list[RoomDetail], RoomPosition | None]:
    """Rooms the user hosts or was ever admitted to, newest first, by keyset."""
    after_at, after_id = after if after is not None else (None, None)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """
            SELECT r.* FROM rooms r
            WHERE (r.host_id = $1
                   OR r.id IN (SELECT room_id FROM participants
                               WHERE user_id = $1 AND ever_joined))
              AND ($2::timestamptz IS NULL OR (r.created_at, r.id) < ($2, $3::text))
            ORDER BY r.created_at DESC, r.id DESC
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


async def update_settings(
    pool: Pool, events: Publisher, who: Identity, room_id: str, changes: dict[str, Any]
) -> RoomDetail:
    async with pool.acquire() as conn, conn.transaction():
        room = await locked_room(conn, room_id)
        if room["host_id"] != who.user_id:
            raise Refused(Refusal.NOT_HOST_SETTINGS)
        if not changes:
            return room_detail(room)
        if not room["is_active"]:
            raise Refused(Refusal.ROOM_INACTIVE)
        new_max = changes.get("max_participants")
        # Capacity may not drop below who is inside: nobody is pushed out by a setting,
        # and `joined <= maxParticipants` stays true at every moment.
        if new_max is not None and new_max < await joined_count(conn, room_id):
            raise Refused(Refusal.CAPACITY_BELOW_JOINED)
        row = await conn.fetchrow(
            """
            UPDATE rooms SET
                name = COALESCE($2, name),
                allow_chat = COALESCE($3, allow_chat),
                allow_screen_share = COALESCE($4, allow_screen_share),
                allow_guest_access = COALESCE($5, allow_guest_access),
                waiting_room = COALESCE($6, waiting_room),
                mute_participants_on_join = COALESCE($7, mute_participants_on_join),
                max_participants = COALESCE($8, max_participants),
                is_locked = COALESCE($9, is_locked),
                updated_at = clock_timestamp()
            WHERE id = $1
            RETURNING *
            """,
            room_id,
            changes.get("name"),
            changes.get("allow_chat"),
            changes.get("allow_screen_share"),
            changes.get("allow_guest_access"),
            changes.get("waiting_room"),
            changes.get("mute_participants_on_join"),
            new_max,
            changes.get("is_locked"),
        )
        assert row is not None
        await events.publish(conn, topic=room_id, event=room_event("settings_updated", room_id))
        if row["is_locked"] != room["is_locked"]:
            kind = "locked" if row["is_locked"] else "unlocked"
            await events.publish(conn, topic=room_id, event=room_event(kind, room_id))
        return room_detail(row)


async def end_room(pool: Pool, events: Publisher, who: Identity, room_id: str) -> RoomDetail:
    """Ending twice answers the ended room again."""
    async with pool.acquire() as conn, conn.transaction():
        room = await locked_room(conn, room_id)
        if room["host_id"] != who.user_id:
            raise Refused(Refusal.NOT_HOST_END)
        if not room["is_active"]:
            return room_detail(room)
        row = await conn.fetchrow(
            """
            UPDATE rooms SET is_active = false, ended_at = t.now, updated_at = t.now
            FROM (SELECT clock_timestamp() AS now) t
            WHERE id = $1
            RETURNING rooms.*
            """,
            room_id,
        )
        assert row is not None
        await conn.execute(
            """
            UPDATE participants SET status = 'left', left_at = $2
            WHERE room_id = $1 AND status IN ('joined', 'waiting')
            """,
            room_id,
            row["ended_at"],
        )
        await events.publish(conn, topic=room_id, event=room_event("ended", room_id))
        return room_detail(row)


# --- live events ------------------------------------------------------------------------------


async def expand_event(pool: Pool, event: Event) -> Event | None:
    """Turns a notified reference into the full object the WebSocket clients get."""
    kind = str(event.get("type", ""))
    room_id = event.get("roomId")
    async with pool.acquire() as conn:
        if kind.startswith("participant."):
            row = await conn.fetchrow(
                "SELECT * FROM participants WHERE id = $1", event.get("participantId")
            )
            if row is None:
                return None
            # The status as of the event, not as of now: a quick join-then-leave
            # must still be told as joined, then left.
            shown = participant(row, status=event.get("status"))
            full: Event = {"type": kind, "roomId": room_id, "participant": _json(shown)}
            if "previousStatus" in event:
                full["previousStatus"] = event["previousStatus"]
            return full
        if kind.startswith("room."):
            row = await conn.fetchrow("SELECT * FROM rooms WHERE id = $1", room_id)
            if row is None:
                return None
            return {"type": kind, "roomId": room_id, "room": _json(room_detail(row))}
        if kind == "chat.message":
            row = await conn.fetchrow(
                "SELECT * FROM messages WHERE id = $1", event.get("messageId")
            )
            if row is None:
                return None
            return {"type": kind, "roomId": room_id, "message": _json(message(row))}
    return None


def _json(model: Participant | RoomDetail | Message) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)
