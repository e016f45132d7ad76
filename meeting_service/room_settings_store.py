"""A room's host at work: its settings and lock, and ending the meeting. Each runs in
one transaction holding the room's row lock, so a capacity change and the joins it
must not undercut take turns."""

from __future__ import annotations

from typing import Any

from meeting_service.models import RoomDetail
from meeting_service.refusals import Refusal, Refused
from meeting_service.store import (
    PARTICIPANT_COLUMNS,
    ROOM_COLUMNS,
    Connection,
    Pool,
    joined_count,
    locked_room,
    participant_event,
    room_detail,
    room_event,
)
from shared.auth import Identity
from shared.realtime import Publisher


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
            RETURNING """
            + ROOM_COLUMNS,
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
        if room["allow_screen_share"] and not row["allow_screen_share"]:
            await _stop_screen_sharing(conn, events, room_id)
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
            WITH t AS (SELECT clock_timestamp() AS now)
            UPDATE rooms SET is_active = false, ended_at = t.now, updated_at = t.now
            FROM t
            WHERE id = $1
            RETURNING """
            + ROOM_COLUMNS,
            room_id,
        )
        assert row is not None
        await conn.execute(
            """
            UPDATE participants SET status = 'left', left_at = $2,
                screen = false, hand_raised = false
            WHERE room_id = $1 AND status IN ('joined', 'waiting')
            """,
            room_id,
            row["ended_at"],
        )
        await events.publish(conn, topic=room_id, event=room_event("ended", room_id))
        return room_detail(row)


async def _stop_screen_sharing(conn: Connection, events: Publisher, room_id: str) -> None:
    """Screen sharing was turned off: whoever shares, apart from the host, stops."""
    stopped = await conn.fetch(
        """
        UPDATE participants SET screen = false
        WHERE room_id = $1 AND screen AND NOT is_host AND status = 'joined'
        RETURNING """
        + PARTICIPANT_COLUMNS,
        room_id,
    )
    for row in stopped:
        await events.publish(conn, topic=room_id, event=participant_event("media", row))
