"""Messages sent together: the keyless sends of one turn of the event loop, stored
by one statement (shared.batching, the `Batcher` of chat_service.sending). A send
alone is store.send_message's statement; this one is the same for many at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from chat_service.store import NOTIFY_SENT, SENT, NotAMember, RoomNotFound, Sent, StoreError


@dataclass(frozen=True, slots=True)
class Send:
    """One request's message: to `room_id`, from `username`."""

    room_id: int
    username: str
    text: str


# store._SEND's guarantees, for every message of the batch. The rooms are locked
# (FOR NO KEY UPDATE) in id order, so two batches never deadlock, and each stays
# locked until the statement's commit; a message is inserted only from its room's
# locked row, so it takes its id while its room is locked: a room's messages commit
# in the order of their ids. Deleting a room waits; joining does not. A message is
# inserted only when its room exists and its sender is a member (`found`,
# `is_member` tell the others which refusal); the messages are inserted in the order
# submitted (`ord`), each with its NOTIFY (store.NOTIFY_SENT: on commit, in id order).
# Rooms and memberships are read along their primary keys by `= ANY` of the arrays:
# index probes in the generic plan too, and a membership check per batch rather than
# per message (an EXISTS per message may be planned as a hashed scan of them all).
#
# RETURNING's rows do not say which request each came from. INSERT ... SELECT ...
# ORDER BY takes the identity values in the SELECT's order (as SQLAlchemy's
# "insertmanyvalues" relies on for PostgreSQL; tests/chat_service/test_sends.py
# checks it): the n-th message inserted, in `ord`, took the n-th smallest id. Its
# answer, MessageSent's JSON, is written by the statement (store.SENT, over `sent`).
# One row per request, in `ord`.
_SEND_MANY = (
    "WITH req AS ("
    " SELECT room_id, username, body, ord"
    " FROM unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY"
    " AS q (room_id, username, body, ord)),"
    " room AS ("
    " SELECT r.id FROM rooms r WHERE r.id = ANY($1::bigint[])"
    " ORDER BY r.id FOR NO KEY UPDATE OF r),"
    " member AS ("
    " SELECT m.room_id, m.username FROM room_members m"
    " WHERE m.room_id = ANY($1::bigint[]) AND m.username = ANY($2::text[])),"
    " checked AS ("
    " SELECT req.ord, req.room_id, req.username, req.body, room.id IS NOT NULL AS found,"
    " room.id IS NOT NULL AND member.room_id IS NOT NULL AS is_member"
    " FROM req LEFT JOIN room ON room.id = req.room_id"
    " LEFT JOIN member ON member.room_id = req.room_id AND member.username = req.username),"
    " inserted AS ("
    " INSERT INTO room_messages (room_id, username, body)"
    " SELECT room_id, username, body FROM checked WHERE is_member ORDER BY ord"
    " RETURNING id, created_at, {notify}),"
    " sent AS (SELECT id, created_at, row_number() OVER (ORDER BY id) AS n FROM inserted),"
    " asked AS (SELECT ord, found, is_member,"
    " CASE WHEN is_member THEN count(*) FILTER (WHERE is_member) OVER (ORDER BY ord) END AS n"
    " FROM checked)"
    " SELECT asked.found, asked.is_member, sent.id AS message_id,"
    " convert_to({answer}, 'UTF8') AS answer"
    " FROM asked LEFT JOIN sent ON sent.n = asked.n ORDER BY asked.ord"
)
SEND_MANY = _SEND_MANY.format(notify=NOTIFY_SENT, answer=SENT)


async def send_messages(
    pool: asyncpg.Pool, sends: Sequence[Send], channel: str
) -> list[Sent | StoreError]:
    """Stores each member's message, in the order given, and tells the rooms'
    listeners (on `channel`) on commit: one statement, atomic. Each send's outcome,
    in order: what it was stored as, or its refusal."""
    rows = await pool.fetch(
        SEND_MANY,
        [send.room_id for send in sends],
        [send.username for send in sends],
        [send.text for send in sends],
        channel,
    )
    return [_outcome(row) for row in rows]


def _outcome(row: asyncpg.Record) -> Sent | StoreError:
    if not row["found"]:
        return RoomNotFound()
    if not row["is_member"]:
        return NotAMember()
    return Sent(row["message_id"], row["answer"])
