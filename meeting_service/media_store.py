"""Media state and hands: what each joined participant says they send, and the
host's mute. Each change is stored and told to the room as `participant.media` or
`participant.hand` when it commits."""

from __future__ import annotations

from meeting_service.models import Participant
from meeting_service.refusals import Refusal, Refused
from meeting_service.store import (
    PARTICIPANT_COLUMNS,
    Connection,
    Pool,
    Record,
    participant,
    participant_event,
    shared_room,
    target_participant,
)
from shared.realtime import Publisher

UPDATE_MEDIA = (
    """
    UPDATE participants SET
        audio = COALESCE($2, audio),
        video = COALESCE($3, video),
        screen = COALESCE($4, screen)
    WHERE id = $1
    RETURNING """
    + PARTICIPANT_COLUMNS
)


async def _joined(conn: Connection, room_id: str, participant_id: str) -> Record:
    row = await target_participant(conn, room_id, participant_id)
    if row["status"] != "joined":
        raise Refused(Refusal.NOT_IN_ROOM)
    return row


async def set_media(
    pool: Pool, events: Publisher, room_id: str, participant_id: str, changes: dict[str, bool]
) -> Participant:
    """The room's row is share-locked first: turning screen sharing off (which
    locks it for update) and starting to share take turns, so nobody is left
    sharing in a room that forbids it."""
    async with pool.acquire() as conn, conn.transaction():
        room = await shared_room(conn, room_id)
        row = await _joined(conn, room_id, participant_id)
        if changes.get("screen") and not row["is_host"] and not room["allow_screen_share"]:
            raise Refused(Refusal.SCREEN_SHARE_DISABLED)
        updated = await conn.fetchrow(
            UPDATE_MEDIA,
            participant_id,
            changes.get("audio"),
            changes.get("video"),
            changes.get("screen"),
        )
        assert updated is not None
        await events.publish(conn, topic=room_id, event=participant_event("media", updated))
        return participant(updated)


async def set_hand(
    pool: Pool, events: Publisher, room_id: str, participant_id: str, raised: bool
) -> Participant:
    async with pool.acquire() as conn, conn.transaction():
        await _joined(conn, room_id, participant_id)
        updated = await conn.fetchrow(
            "UPDATE participants SET hand_raised = $2 WHERE id = $1 RETURNING "
            + PARTICIPANT_COLUMNS,
            participant_id,
            raised,
        )
        assert updated is not None
        await events.publish(conn, topic=room_id, event=participant_event("hand", updated))
        return participant(updated)


async def mute(
    pool: Pool, events: Publisher, host_id: str, room_id: str, participant_id: str
) -> Participant:
    """The host turns someone's microphone off; they may turn it on again themselves.
    Muting the muted changes nothing and tells no one."""
    async with pool.acquire() as conn, conn.transaction():
        room = await shared_room(conn, room_id)
        if room["host_id"] != host_id:
            raise Refused(Refusal.NOT_HOST_MUTE)
        row = await target_participant(conn, room_id, participant_id)
        if not row["audio"]:
            return participant(row)
        updated = await conn.fetchrow(UPDATE_MEDIA, participant_id, False, None, None)
        assert updated is not None
        await events.publish(conn, topic=room_id, event=participant_event("media", updated))
        return participant(updated)
