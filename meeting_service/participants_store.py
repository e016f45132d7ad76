"""Participants: joining by code, the waiting room, leaving, removal, who may watch."""

from __future__ import annotations

from meeting_service.models import Participant, ParticipantStatus, RoomDetail
from meeting_service.refusals import Refusal, Refused
from meeting_service.store import (
    PARTICIPANT_COLUMNS,
    PRESENT,
    ROOM_COLUMNS,
    Pool,
    joined_count,
    locked_room,
    membership,
    participant,
    participant_event,
    require_inside,
    room_detail,
    room_row,
    target_participant,
)
from shared.auth import Identity
from shared.ids import new_id
from shared.realtime import Publisher


async def join_room(
    pool: Pool, events: Publisher, who: Identity, code: str
) -> tuple[Participant, RoomDetail]:
    async with pool.acquire() as conn, conn.transaction():
        room = await conn.fetchrow(
            f"SELECT {ROOM_COLUMNS} FROM rooms WHERE code = $1 FOR UPDATE",
            code,
        )
        if room is None:
            raise Refused(Refusal.ROOM_NOT_FOUND)
        if not room["is_active"]:
            raise Refused(Refusal.ROOM_INACTIVE)
        current = await membership(conn, room["id"], who.user_id)
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
            if await joined_count(conn, room["id"]) >= room["max_participants"]:
                raise Refused(Refusal.ROOM_FULL)
            status = "joined"
        # Each stay starts afresh: camera and microphone on as the client
        # joins, unless the room mutes those who join; no screen, hand down.
        row = await conn.fetchrow(
            """
            INSERT INTO participants (id, room_id, user_id, display_name, avatar_url,
                                      is_host, is_guest, status, ever_joined, joined_at,
                                      audio, video, screen, hand_raised)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8 = 'joined', clock_timestamp(),
                    $9, true, false, false)
            ON CONFLICT (room_id, user_id) DO UPDATE SET
                display_name = EXCLUDED.display_name,
                avatar_url = EXCLUDED.avatar_url,
                status = EXCLUDED.status,
                ever_joined = participants.ever_joined OR EXCLUDED.ever_joined,
                joined_at = EXCLUDED.joined_at,
                left_at = NULL,
                audio = EXCLUDED.audio,
                video = EXCLUDED.video,
                screen = EXCLUDED.screen,
                hand_raised = EXCLUDED.hand_raised
            RETURNING """
            + PARTICIPANT_COLUMNS,
            new_id(),
            room["id"],
            who.user_id,
            who.display_name,
            who.avatar_url,
            is_host,
            who.is_guest,
            status,
            is_host or not room["mute_participants_on_join"],
        )
        assert row is not None
        await events.publish(conn, topic=room["id"], event=participant_event(status, row))
        return participant(row), room_detail(room)


async def leave_room(pool: Pool, events: Publisher, who: Identity, room_id: str) -> Participant:
    """Leaving twice answers the same participant again."""
    async with pool.acquire() as conn, conn.transaction():
        await room_row(conn, room_id)
        row = await conn.fetchrow(
            f"SELECT {PARTICIPANT_COLUMNS} FROM participants"
            " WHERE room_id = $1 AND user_id = $2 FOR UPDATE",
            room_id,
            who.user_id,
        )
        if row is None:
            raise Refused(Refusal.PARTICIPANT_NOT_FOUND)
        if row["status"] not in PRESENT:
            return participant(row)
        left = await conn.fetchrow(
            """
            UPDATE participants SET status = 'left', left_at = clock_timestamp(),
                screen = false, hand_raised = false
            WHERE id = $1 RETURNING """
            + PARTICIPANT_COLUMNS,
            row["id"],
        )
        assert left is not None
        event = participant_event("left", left, previous=row["status"])
        await events.publish(conn, topic=room_id, event=event)
        return participant(left)


async def list_participants(pool: Pool, who: Identity, room_id: str) -> list[Participant]:
    async with pool.acquire() as conn:
        room = await room_row(conn, room_id)
        await require_inside(conn, room, who)
        visible = list(PRESENT) if room["host_id"] == who.user_id else ["joined"]
        rows = await conn.fetch(
            f"SELECT {PARTICIPANT_COLUMNS} FROM participants"
            """
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
        room = await locked_room(conn, room_id)
        if room["host_id"] != who.user_id:
            raise Refused(Refusal.NOT_HOST_ADMIT if admit else Refusal.NOT_HOST_DENY)
        row = await target_participant(conn, room_id, participant_id)
        if not room["is_active"]:
            raise Refused(Refusal.ROOM_INACTIVE)
        outcome: ParticipantStatus = "joined" if admit else "denied"
        if row["status"] == outcome:
            return participant(row)
        if row["status"] != "waiting":
            raise Refused(Refusal.NOT_WAITING)
        if admit and await joined_count(conn, room_id) >= room["max_participants"]:
            raise Refused(Refusal.ROOM_FULL)
        updated = await conn.fetchrow(
            """
            UPDATE participants SET
                status = $2,
                ever_joined = ever_joined OR $2 = 'joined',
                joined_at = CASE WHEN $2 = 'joined' THEN clock_timestamp() ELSE joined_at END,
                left_at = CASE WHEN $2 = 'joined' THEN NULL ELSE clock_timestamp() END,
                audio = audio AND NOT ($2 = 'joined' AND $3)
            WHERE id = $1 RETURNING """
            + PARTICIPANT_COLUMNS,
            participant_id,
            outcome,
            room["mute_participants_on_join"],
        )
        assert updated is not None
        kind = "admitted" if admit else "denied"
        await events.publish(conn, topic=room_id, event=participant_event(kind, updated))
        return participant(updated)


async def remove_participant(
    pool: Pool, events: Publisher, who: Identity, room_id: str, participant_id: str
) -> None:
    """A removed person stays out: joining again by code is refused."""
    async with pool.acquire() as conn, conn.transaction():
        room = await locked_room(conn, room_id)
        if room["host_id"] != who.user_id:
            raise Refused(Refusal.NOT_HOST_REMOVE)
        row = await target_participant(conn, room_id, participant_id)
        if row["is_host"]:
            raise Refused(Refusal.HOST_NOT_REMOVABLE)
        if row["status"] == "removed":
            return
        removed = await conn.fetchrow(
            """
            UPDATE participants SET status = 'removed', left_at = clock_timestamp(),
                screen = false, hand_raised = false
            WHERE id = $1 RETURNING """
            + PARTICIPANT_COLUMNS,
            participant_id,
        )
        assert removed is not None
        event = participant_event("removed", removed, previous=row["status"])
        await events.publish(conn, topic=room_id, event=event)


async def joined_participant(pool: Pool, who: Identity, room_id: str) -> Participant:
    """The caller's participant, if joined (the host too only while joined)."""
    async with pool.acquire() as conn:
        await room_row(conn, room_id)
        row = await membership(conn, room_id, who.user_id)
    if row is None or row["status"] != "joined":
        raise Refused(Refusal.NOT_IN_ROOM)
    return participant(row)
