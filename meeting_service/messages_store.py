"""In-meeting chat: who may read and write, and newest-first pages."""

from __future__ import annotations

from meeting_service.models import Message
from meeting_service.refusals import Refusal, Refused
from meeting_service.store import (
    MESSAGE_COLUMNS,
    Connection,
    Pool,
    Record,
    message,
    require_inside,
    room_row,
    shared_room,
)
from shared.auth import Identity
from shared.ids import new_id
from shared.realtime import Publisher


async def _chat_room(
    conn: Connection, who: Identity, room_id: str, *, writing: bool = False
) -> tuple[Record, Record]:
    room = await (shared_room if writing else room_row)(conn, room_id)
    member = await require_inside(conn, room, who)
    if not room["allow_chat"]:
        raise Refused(Refusal.CHAT_DISABLED)
    assert member is not None  # the host has a row from creation on
    return room, member


async def send_message(
    conn: Connection, events: Publisher, who: Identity, room_id: str, content: str
) -> Message:
    """Its own transaction, or a savepoint in the caller's (Idempotency-Key)."""
    async with conn.transaction():
        room, member = await _chat_room(conn, who, room_id, writing=True)
        if not room["is_active"]:
            raise Refused(Refusal.ROOM_INACTIVE)
        row = await conn.fetchrow(
            """
            INSERT INTO messages (id, room_id, participant_id, user_id, display_name,
                                  avatar_url, is_guest, content, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, clock_timestamp())
            RETURNING """
            + MESSAGE_COLUMNS,
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
            f"SELECT {MESSAGE_COLUMNS} FROM messages"
            """
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
