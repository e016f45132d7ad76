"""What the meeting stores share: the columns they read, rows to shapes, the steps
they take inside their transactions, and the small events they publish.

Every statement names its columns: a statement asyncpg cached before another
replica applied an additive migration must keep its row type, since inside a
transaction it cannot be prepared again (InvalidCachedStatementError)."""

from __future__ import annotations

from typing import Any

import asyncpg

from meeting_service.models import (
    Host,
    Media,
    Message,
    Participant,
    RoomDetail,
    RoomSettings,
)
from meeting_service.refusals import Refusal, Refused
from shared.auth import Identity
from shared.db import Conn
from shared.realtime import Event

Pool = asyncpg.Pool
Connection = Conn
Record = asyncpg.Record

PRESENT = ("joined", "waiting")

# Statements are built from these constants only, never from input.
ROOM_COLUMNS = (
    "id, code, name, host_id, host_display_name, host_avatar_url, is_active, is_locked,"
    " settings_id, allow_chat, allow_screen_share, allow_guest_access, waiting_room,"
    " mute_participants_on_join, max_participants, started_at, created_at, updated_at,"
    " ended_at"
)
# `connected`: the participant has an open socket on some replica.
PARTICIPANT_COLUMNS = (
    "id, room_id, user_id, display_name, avatar_url, is_host, is_guest, status, joined_at,"
    " audio, video, screen, hand_raised,"
    " EXISTS (SELECT 1 FROM connections c WHERE c.participant_id = participants.id)"
    " AS connected"
)
MESSAGE_COLUMNS = "id, room_id, user_id, display_name, avatar_url, is_guest, content, created_at"


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


def participant(row: Record, as_of: Event | None = None) -> Participant:
    """`as_of`: an event's own record of what changed (status, media, hand,
    presence), which wins over the row: the row may have moved on since."""
    state: dict[str, Any] = {
        "status": row["status"],
        "media": {"audio": row["audio"], "video": row["video"], "screen": row["screen"]},
        "hand_raised": row["hand_raised"],
        "connected": row["connected"],
    }
    if as_of is not None:
        for key, field in STATE_FIELDS.items():
            if key in as_of:
                state[field] = as_of[key]
    return Participant(
        id=row["id"],
        user_id=row["user_id"],
        display_name=row["display_name"],
        avatar_url=row["avatar_url"],
        is_host=row["is_host"],
        is_guest=row["is_guest"],
        joined_at=row["joined_at"],
        status=state["status"],
        media=Media.model_validate(state["media"]),
        hand_raised=state["hand_raised"],
        connected=state["connected"],
    )


# The event keys that carry a participant's state at the time (see participant_event).
STATE_FIELDS = {
    "status": "status",
    "media": "media",
    "handRaised": "hand_raised",
    "connected": "connected",
}


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

ROOM_BY_ID = f"SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1"


async def locked_room(conn: Connection, room_id: str) -> Record:
    """The room's row, locked until commit: joins, admissions and capacity changes of
    one room take turns here, so a count read after it stays true until commit."""
    row = await conn.fetchrow(ROOM_BY_ID + " FOR UPDATE", room_id)
    if row is None:
        raise Refused(Refusal.ROOM_NOT_FOUND)
    return row


async def room_row(conn: Connection, room_id: str) -> Record:
    row = await conn.fetchrow(ROOM_BY_ID, room_id)
    if row is None:
        raise Refused(Refusal.ROOM_NOT_FOUND)
    return row


async def shared_room(conn: Connection, room_id: str) -> Record:
    """The room's row, share-locked until commit: writers that only depend on the
    room staying as read (a chat message) run side by side, but not while the
    room ends or someone is removed."""
    row = await conn.fetchrow(ROOM_BY_ID + " FOR SHARE", room_id)
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
        f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE room_id = $1 AND user_id = $2",
        room_id,
        user_id,
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
        f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE id = $1 AND room_id = $2 FOR UPDATE",
        participant_id,
        room_id,
    )
    if row is None:
        raise Refused(Refusal.PARTICIPANT_NOT_FOUND)
    return row


def participant_event(kind: str, row: Record, previous: str | None = None) -> Event:
    """Small on purpose (NOTIFY payloads are limited): the events store fills in the
    rest. It carries the participant's state as of now, so that a quick
    join-then-leave (or mute-then-unmute) is still told step by step."""
    event: Event = {
        "type": f"participant.{kind}",
        "roomId": row["room_id"],
        "participantId": row["id"],
        "status": row["status"],
        "media": {"audio": row["audio"], "video": row["video"], "screen": row["screen"]},
        "handRaised": row["hand_raised"],
        "connected": row["connected"],
    }
    if previous is not None:
        # Tells clients (and the event filter) whether someone left the meeting
        # or only the waiting room, which is the host's business.
        event["previousStatus"] = previous
    return event


def room_event(kind: str, room_id: str) -> Event:
    return {"type": f"room.{kind}", "roomId": room_id}
