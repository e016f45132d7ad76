"""All SQL of the meeting service. Rules that must hold under concurrency (unique
codes, capacity) are decided inside one transaction holding the room's row lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

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

Pool = asyncpg.Pool
Connection = Conn
Record = asyncpg.Record
Event = dict[str, Any]

CODE_CONSTRAINT = "rooms_code_key"
PRESENT = ("joined", "waiting")


class Publisher(Protocol):
    """Sends an event when the transaction `conn` is in commits, and never otherwise."""

    async def publish(self, conn: Connection, *, topic: str, event: Event) -> None: ...


class NoPublisher:
    async def publish(self, conn: Connection, *, topic: str, event: Event) -> None:
        return None


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a room's live events, as of connecting."""

    user_id: str
    is_host: bool
    status: ParticipantStatus


# --- rows to shapes ---------------------------------------------------------------


def _host(row: Record) -> Host:
    return Host(
        id=row["host_id"],
        display_name=row["host_display_name"],
        avatar_url=row["host_avatar_url"],
    )


def _room_fields(row: Record) -> dict[str, Any]:
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
        "host": _host(row),
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
    return RoomDetail(**_room_fields(row), ended_at=row["ended_at"])


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


async def _locked_room(conn: Connection, room_id: str) -> Record:
    """The room's row, locked until commit: joins, admissions and capacity changes of
    one room take turns here, so a count read after it stays true until commit."""
    row = await conn.fetchrow("SELECT * FROM rooms WHERE id = $1 FOR UPDATE", room_id)
    if row is None:
        raise Refused(Refusal.ROOM_NOT_FOUND)
    return row


async def _room(conn: Connection, room_id: str) -> Record:
    row = await conn.fetchrow("SELECT * FROM rooms WHERE id = $1", room_id)
    if row is None:
        raise Refused(Refusal.ROOM_NOT_FOUND)
    return row


async def _joined_count(conn: Connection, room_id: str) -> int:
    count = await conn.fetchval(
        "SELECT count(*) FROM participants WHERE room_id = $1 AND status = 'joined'", room_id
    )
    return int(count)


async def _membership(conn: Connection, room_id: str, user_id: str) -> Record | None:
    return await conn.fetchrow(
        "SELECT * FROM participants WHERE room_id = $1 AND user_id = $2", room_id, user_id
    )


async def _require_inside(conn: Connection, room: Record, who: Identity) -> Record | None:
    """The host always; anyone else only while joined. Returns the caller's participant row."""
    row = await _membership(conn, room["id"], who.user_id)
    if room["host_id"] == who.user_id:
        return row
    if row is None or row["status"] != "joined":
        raise Refused(Refusal.NOT_IN_ROOM)
    return row


async def _target(conn: Connection, room_id: str, participant_id: str) -> Record:
    row = await conn.fetchrow(
        "SELECT * FROM participants WHERE id = $1 AND room_id = $2 FOR UPDATE",
        participant_id,
        room_id,
    )
    if row is None:
        raise Refused(Refusal.PARTICIPANT_NOT_FOUND)
    return row


def _participant_event(kind: str, row: Record, previous: str | None = None) -> Event:
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


def _room_event(kind: str, room_id: str) -> Event:
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
            return Room(**_room_fields(row))
    raise Refused(Refusal.CODES_EXHAUSTED)


async def get_room(pool: Pool, room_id: str) -> RoomDetail:
    async with pool.acquire() as conn:
        return room_detail(await _room(conn, room_id))


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
        host=_host(row),
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
        room = await _locked_room(conn, room_id)
        if room["host_id"] != who.user_id:
            raise Refused(Refusal.NOT_HOST_SETTINGS)
        if not changes:
            return room_detail(room)
        if not room["is_active"]:
            raise Refused(Refusal.ROOM_INACTIVE)
        new_max = changes.get("max_participants")
        # Capacity may not drop below who is inside: nobody is pushed out by a setting,
        # and `joined <= maxParticipants` stays true at every moment.
        if new_max is not None and new_max < await _joined_count(conn, room_id):
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
        await events.publish(conn, topic=room_id, event=_room_event("settings_updated", room_id))
        if row["is_locked"] != room["is_locked"]:
            kind = "locked" if row["is_locked"] else "unlocked"
            await events.publish(conn, topic=room_id, event=_room_event(kind, room_id))
        return room_detail(row)


async def end_room(pool: Pool, events: Publisher, who: Identity, room_id: str) -> RoomDetail:
    """Ending twice answers the ended room again."""
    async with pool.acquire() as conn, conn.transaction():
        room = await _locked_room(conn, room_id)
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
        await events.publish(conn, topic=room_id, event=_room_event("ended", room_id))
        return room_detail(row)


# --- participants ----------------------------------------------------------------------


async def join_room(
    pool: Pool, events: Publisher, who: Identity, code: str
) -> tuple[Participant, RoomDetail]:
    async with pool.acquire() as conn, conn.transaction():
        room = await conn.fetchrow("SELECT * FROM rooms WHERE code = $1 FOR UPDATE", code)
        if room is None:
            raise Refused(Refusal.ROOM_NOT_FOUND)
        if not room["is_active"]:
            raise Refused(Refusal.ROOM_INACTIVE)
        current = await _membership(conn, room["id"], who.user_id)
        if current is not None and current["status"] in PRESENT:
            return participant(current), room_detail(room)
        if current is not None and current["status"] == "removed":
            raise Refused(Refusal.REMOVED)
        is_host = room["host_id"] == who.user_id
        if who.is_guest and not room["allow_guest_access"]:
            raise Refused(Refusal.GUESTS_NOT_ALLOWED)
        if room["is_locked"] and not is_host:
            raise Refused(Refusal.ROOM_LOCKED)
        status: ParticipantStatus
        if room["waiting_room"] and not is_host:
            status = "waiting"  # capacity is checked when the host admits
        else:
            if await _joined_count(conn, room["id"]) >= room["max_participants"]:
                raise Refused(Refusal.ROOM_FULL)
            status = "joined"
        row = await conn.fetchrow(
            """
            INSERT INTO participants (id, room_id, user_id, display_name, avatar_url,
                                      is_host, is_guest, status, ever_joined, joined_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8 = 'joined', clock_timestamp())
            ON CONFLICT (room_id, user_id) DO UPDATE SET
                display_name = EXCLUDED.display_name,
                avatar_url = EXCLUDED.avatar_url,
                status = EXCLUDED.status,
                ever_joined = participants.ever_joined OR EXCLUDED.ever_joined,
                joined_at = EXCLUDED.joined_at,
                left_at = NULL
            RETURNING *
            """,
            new_id(),
            room["id"],
            who.user_id,
            who.display_name,
            who.avatar_url,
            is_host,
            who.is_guest,
            status,
        )
        assert row is not None
        await events.publish(conn, topic=room["id"], event=_participant_event(status, row))
        return participant(row), room_detail(room)


async def leave_room(pool: Pool, events: Publisher, who: Identity, room_id: str) -> Participant:
    """Leaving twice answers the same participant again."""
    async with pool.acquire() as conn, conn.transaction():
        await _room(conn, room_id)
        row = await conn.fetchrow(
            "SELECT * FROM participants WHERE room_id = $1 AND user_id = $2 FOR UPDATE",
            room_id,
            who.user_id,
        )
        if row is None:
            raise Refused(Refusal.PARTICIPANT_NOT_FOUND)
        if row["status"] not in PRESENT:
            return participant(row)
        left = await conn.fetchrow(
            """
            UPDATE participants SET status = 'left', left_at = clock_timestamp()
            WHERE id = $1 RETURNING *
            """,
            row["id"],
        )
        assert left is not None
        event = _participant_event("left", left, previous=row["status"])
        await events.publish(conn, topic=room_id, event=event)
        return participant(left)


async def list_participants(pool: Pool, who: Identity, room_id: str) -> list[Participant]:
    async with pool.acquire() as conn:
        room = await _room(conn, room_id)
        await _require_inside(conn, room, who)
        visible = list(PRESENT) if room["host_id"] == who.user_id else ["joined"]
        rows = await conn.fetch(
            """
            SELECT * FROM participants
            WHERE room_id = $1 AND status = ANY($2::text[])
            ORDER BY is_host DESC, joined_at, id
            """,
            room_id,
            visible,
        )
    return [participant(row) for row in rows]


async def decide_waiting(
    pool: Pool, events: Publisher, who: Identity, room_id: str, participant_id: str, *, admit: bool
) -> Participant:
    """Admit or deny someone in the waiting room; deciding the same way twice is harmless."""
    async with pool.acquire() as conn, conn.transaction():
        room = await _locked_room(conn, room_id)
        if room["host_id"] != who.user_id:
            raise Refused(Refusal.NOT_HOST_ADMIT if admit else Refusal.NOT_HOST_DENY)
        row = await _target(conn, room_id, participant_id)
        if not room["is_active"]:
            raise Refused(Refusal.ROOM_INACTIVE)
        outcome: ParticipantStatus = "joined" if admit else "denied"
        if row["status"] == outcome:
            return participant(row)
        if row["status"] != "waiting":
            raise Refused(Refusal.NOT_WAITING)
        if admit and await _joined_count(conn, room_id) >= room["max_participants"]:
            raise Refused(Refusal.ROOM_FULL)
        updated = await conn.fetchrow(
            """
            UPDATE participants SET
                status = $2,
                ever_joined = ever_joined OR $2 = 'joined',
                joined_at = CASE WHEN $2 = 'joined' THEN clock_timestamp() ELSE joined_at END,
                left_at = CASE WHEN $2 = 'joined' THEN NULL ELSE clock_timestamp() END
            WHERE id = $1 RETURNING *
            """,
            participant_id,
            outcome,
        )
        assert updated is not None
        kind = "admitted" if admit else "denied"
        await events.publish(conn, topic=room_id, event=_participant_event(kind, updated))
        return participant(updated)


async def remove_participant(
    pool: Pool, events: Publisher, who: Identity, room_id: str, participant_id: str
) -> None:
    """A removed person stays out: joining again by code is refused."""
    async with pool.acquire() as conn, conn.transaction():
        room = await _locked_room(conn, room_id)
        if room["host_id"] != who.user_id:
            raise Refused(Refusal.NOT_HOST_REMOVE)
        row = await _target(conn, room_id, participant_id)
        if row["is_host"]:
            raise Refused(Refusal.HOST_NOT_REMOVABLE)
        if row["status"] == "removed":
            return
        removed = await conn.fetchrow(
            """
            UPDATE participants SET status = 'removed', left_at = clock_timestamp()
            WHERE id = $1 RETURNING *
            """,
            participant_id,
        )
        assert removed is not None
        event = _participant_event("removed", removed, previous=row["status"])
        await events.publish(conn, topic=room_id, event=event)


async def viewer(pool: Pool, who: Identity, room_id: str) -> Viewer:
    """Who may watch the room live: the host, joined participants, and those waiting
    (they need to hear that they were admitted or denied)."""
    async with pool.acquire() as conn:
        room = await _room(conn, room_id)
        row = await _membership(conn, room_id, who.user_id)
    if room["host_id"] == who.user_id:
        return Viewer(who.user_id, True, "joined")
    if row is None or row["status"] not in PRESENT:
        raise Refused(Refusal.NOT_IN_ROOM)
    return Viewer(who.user_id, False, row["status"])


# --- in-meeting chat ----------------------------------------------------------------------


async def _chat_room(conn: Connection, who: Identity, room_id: str) -> tuple[Record, Record]:
    room = await _room(conn, room_id)
    member = await _require_inside(conn, room, who)
    if not room["allow_chat"]:
        raise Refused(Refusal.CHAT_DISABLED)
    assert member is not None  # the host has a row from creation on
    return room, member


async def send_message(
    pool: Pool, events: Publisher, who: Identity, room_id: str, content: str
) -> Message:
    async with pool.acquire() as conn, conn.transaction():
        room, member = await _chat_room(conn, who, room_id)
        if not room["is_active"]:
            raise Refused(Refusal.ROOM_INACTIVE)
        row = await conn.fetchrow(
            """
            INSERT INTO messages (id, room_id, participant_id, user_id, display_name,
                                  avatar_url, is_guest, content, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, clock_timestamp())
            RETURNING *
            """,
            new_id(),
            room_id,
            member["id"],
            who.user_id,
            who.display_name,
            who.avatar_url,
            who.is_guest,
            content,
        )
        assert row is not None
        await events.publish(
            conn,
            topic=room_id,
            event={"type": "chat.message", "roomId": room_id, "messageId": row["id"]},
        )
        return message(row)


async def list_messages(
    pool: Pool, who: Identity, room_id: str, limit: int, before: str | None
) -> tuple[list[Message], str | None]:
    """Newest first; `before` is the id of the oldest message the client already has."""
    async with pool.acquire() as conn:
        await _chat_room(conn, who, room_id)
        before_seq = None
        if before is not None:
            before_seq = await conn.fetchval(
                "SELECT seq FROM messages WHERE id = $1 AND room_id = $2", before, room_id
            )
            if before_seq is None:
                raise Refused(Refusal.MESSAGE_NOT_FOUND)
        rows = await conn.fetch(
            """
            SELECT * FROM messages
            WHERE room_id = $1 AND ($2::bigint IS NULL OR seq < $2)
            ORDER BY seq DESC
            LIMIT $3
            """,
            room_id,
            before_seq,
            limit + 1,
        )
    page = [message(row) for row in rows[:limit]]
    return page, page[-1].id if len(rows) > limit else None


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
