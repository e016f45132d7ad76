"""All of the chat service's SQL: one function per operation, transactions where
the invariants live (the public-room quota, unique names, membership)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg

from chat_service.models import Member, MessageSent, PublicRoom, UserRoom
from shared.db import Conn, advisory_lock_id
from shared.realtime import notify_sql
from shared.sql_json import json_object_sql
from shared.timefmt import iso_ms_sql

# Every public-room creation takes this transaction-scoped lock before counting,
# so the count and the insert are one step for concurrent creators.
PUBLIC_ROOMS_LOCK = advisory_lock_id("chat:public-room-quota")


class Events(Protocol):
    """Told of each change inside its transaction, so listeners hear of it on commit.
    A message's notification is sent by the statement that stores it, on `channel`."""

    channel: str

    async def member_left(self, conn: Conn, room_id: int, username: str) -> None: ...

    async def room_deleted(self, conn: Conn, room_id: int) -> None: ...


class StoreError(Exception):
    """A request the data refuses; the routes say how it reads over HTTP."""


class RoomNotFound(StoreError):
    pass


class RoomNameTaken(StoreError):
    pass


class PublicRoomQuotaReached(StoreError):
    pass


class NotAMember(StoreError):
    pass


class NotTheCreator(StoreError):
    pass


@dataclass(frozen=True)
class RoomForJoin:
    room_id: int
    name: str
    is_private: bool
    password_hash: str | None
    is_member: bool


# A public room: under PUBLIC_ROOMS_LOCK, taken by the statement before (this one's
# snapshot then sees every room committed by the creator it waited for). A taken name
# is the more useful answer than a full quota, so it is told first; the unique index
# still decides races with private creations. The room is inserted, with its creator
# as first member, only when neither refuses.
CREATE_PUBLIC_ROOM = (
    "WITH taken AS ("
    " SELECT EXISTS (SELECT 1 FROM rooms WHERE lower(btrim(name)) = lower(btrim($1))) AS taken),"
    " public AS (SELECT count(*) AS rooms FROM rooms WHERE NOT is_private),"
    " room AS ("
    " INSERT INTO rooms (name, is_private, password_hash, creator)"
    " SELECT $1, false, NULL, $2 FROM taken, public"
    " WHERE NOT taken.taken AND public.rooms < $3 RETURNING id),"
    " member AS (INSERT INTO room_members (room_id, username) SELECT id, $2 FROM room)"
    " SELECT taken.taken, room.id AS room_id FROM taken LEFT JOIN room ON true"
)
# A private room: no quota, so one statement, atomic by itself.
CREATE_PRIVATE_ROOM = (
    "WITH room AS ("
    " INSERT INTO rooms (name, is_private, password_hash, creator)"
    " VALUES ($1, true, $3, $2) RETURNING id),"
    " member AS (INSERT INTO room_members (room_id, username) SELECT id, $2 FROM room)"
    " SELECT id FROM room"
)


async def create_room(
    conn: Conn,
    *,
    name: str,
    creator: str,
    password_hash: str | None,
    max_public_rooms: int,
) -> int:
    """A new room with its creator as first member; private when it has a password hash.
    Atomic by itself, or inside the caller's transaction (Idempotency-Key)."""
    try:
        if password_hash is not None:
            private_id: int = await conn.fetchval(CREATE_PRIVATE_ROOM, name, creator, password_hash)
            return private_id
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PUBLIC_ROOMS_LOCK)
            row = await conn.fetchrow(CREATE_PUBLIC_ROOM, name, creator, max_public_rooms)
    except asyncpg.UniqueViolationError:
        raise RoomNameTaken from None
    assert row is not None
    if row["taken"]:
        raise RoomNameTaken
    if row["room_id"] is None:
        raise PublicRoomQuotaReached
    room_id: int = row["room_id"]
    return room_id


async def public_rooms(pool: asyncpg.Pool, username: str) -> list[PublicRoom]:
    rows = await pool.fetch(
        "SELECT r.id AS room_id, r.name, r.is_private, r.created_at,"
        " (SELECT count(*) FROM room_members m WHERE m.room_id = r.id) AS member_count,"
        " EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.username = $1)"
        " AS joined"
        " FROM rooms r WHERE NOT r.is_private ORDER BY r.id",
        username,
    )
    return [PublicRoom.model_validate(dict(row)) for row in rows]


# Two statements rather than one with "$2 IS NULL OR ...": a prepared statement's
# generic plan could not use the cursor as an index condition, and would walk the
# user's rooms from the first on every page.
USER_ROOMS_FIRST = (
    "SELECT r.id AS room_id, r.name, r.is_private, r.creator = $1 AS is_creator, m.joined_at"
    " FROM room_members m JOIN rooms r ON r.id = m.room_id"
    " WHERE m.username = $1"
    " ORDER BY m.joined_at DESC, m.room_id DESC LIMIT $2"
)
USER_ROOMS_AFTER = (
    "SELECT r.id AS room_id, r.name, r.is_private, r.creator = $1 AS is_creator, m.joined_at"
    " FROM room_members m JOIN rooms r ON r.id = m.room_id"
    " WHERE m.username = $1 AND (m.joined_at, m.room_id) < ($3, $4)"
    " ORDER BY m.joined_at DESC, m.room_id DESC LIMIT $2"
)


async def user_rooms(
    pool: asyncpg.Pool, username: str, *, limit: int, after: tuple[datetime, int] | None
) -> tuple[list[UserRoom], tuple[datetime, int] | None]:
    """One page of the rooms `username` is in, newest joined first, and the
    position after its last row when there is more."""
    if after is None:
        rows = await pool.fetch(USER_ROOMS_FIRST, username, limit + 1)
    else:
        rows = await pool.fetch(USER_ROOMS_AFTER, username, limit + 1, *after)
    rooms = [UserRoom.model_validate(dict(row)) for row in rows[:limit]]
    more = len(rows) > limit
    return rooms, ((rooms[-1].joined_at, rooms[-1].room_id) if more else None)


async def room_for_join(pool: asyncpg.Pool, name: str, username: str) -> RoomForJoin:
    row = await pool.fetchrow(
        "SELECT r.id AS room_id, r.name, r.is_private, r.password_hash,"
        " EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.username = $2)"
        " AS is_member"
        " FROM rooms r WHERE lower(btrim(r.name)) = lower(btrim($1))",
        name,
        username,
    )
    if row is None:
        raise RoomNotFound
    return RoomForJoin(**dict(row))


async def add_member(pool: asyncpg.Pool, room_id: int, username: str) -> None:
    """Idempotent: a member who joins again keeps their first joined_at."""
    try:
        await pool.execute(
            "INSERT INTO room_members (room_id, username) VALUES ($1, $2)"
            " ON CONFLICT (room_id, username) DO NOTHING",
            room_id,
            username,
        )
    except asyncpg.ForeignKeyViolationError:
        raise RoomNotFound from None  # deleted since it was looked up


async def leave_room(
    pool: asyncpg.Pool, room_id: int, username: str, events: Events | None = None
) -> str:
    """The room's name, once `username` is no longer in it."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "WITH gone AS ("
            " DELETE FROM room_members WHERE room_id = $1 AND username = $2 RETURNING 1)"
            " SELECT r.name, EXISTS (SELECT 1 FROM gone) AS left_now"
            " FROM rooms r WHERE r.id = $1",
            room_id,
            username,
        )
        if row is None:
            raise RoomNotFound
        if not row["left_now"]:
            raise NotAMember
        if events is not None:
            await events.member_left(conn, room_id, username)
        name: str = row["name"]
        return name


async def delete_room(
    pool: asyncpg.Pool, room_id: int, username: str, events: Events | None = None
) -> str:
    """Removes the room, its members and its messages; only its creator may."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT name, creator FROM rooms WHERE id = $1 FOR UPDATE", room_id
        )
        if row is None:
            raise RoomNotFound
        if row["creator"] != username:
            raise NotTheCreator
        await conn.execute("DELETE FROM rooms WHERE id = $1", room_id)
        if events is not None:
            await events.room_deleted(conn, room_id)
        name: str = row["name"]
        return name


async def _membership(conn: Conn | asyncpg.Pool, room_id: int, username: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT r.is_private, r.creator,"
        " EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.username = $2)"
        " AS is_member"
        " FROM rooms r WHERE r.id = $1",
        room_id,
        username,
    )
    if row is None:
        raise RoomNotFound
    return row


# Joining order, ties by username, along room_members_by_room; LIMIT NULL is all of them.
MEMBERS_FIRST = (
    "SELECT username, username = $2 AS is_creator, joined_at FROM room_members"
    " WHERE room_id = $1 ORDER BY joined_at, username LIMIT $3"
)
MEMBERS_AFTER = (
    "SELECT username, username = $2 AS is_creator, joined_at FROM room_members"
    " WHERE room_id = $1 AND (joined_at, username) > ($4, $5)"
    " ORDER BY joined_at, username LIMIT $3"
)


async def room_members(
    pool: asyncpg.Pool,
    room_id: int,
    username: str,
    *,
    limit: int | None = None,
    after: tuple[datetime, str] | None = None,
) -> tuple[list[Member], tuple[datetime, str] | None]:
    """Everyone may see a public room's members; a private room's only its members.
    A page of `limit` (all of them without one) and the position after it when there is more."""
    room = await _membership(pool, room_id, username)
    if room["is_private"] and not room["is_member"]:
        raise NotAMember
    fetch = None if limit is None else limit + 1
    if after is None:
        rows = await pool.fetch(MEMBERS_FIRST, room_id, room["creator"], fetch)
    else:
        rows = await pool.fetch(MEMBERS_AFTER, room_id, room["creator"], fetch, *after)
    members = [Member.model_validate(dict(row)) for row in rows[:limit]]
    more = limit is not None and len(rows) > limit
    return members, ((members[-1].joined_at, members[-1].username) if more else None)


async def require_member(conn: Conn | asyncpg.Pool, room_id: int, username: str) -> None:
    room = await _membership(conn, room_id, username)
    if not room["is_member"]:
        raise NotAMember


# One statement, so one round trip and no explicit transaction: the room's row is
# locked (FOR NO KEY UPDATE) before the message takes its id, and stays locked until
# the statement's commit, so a room's messages commit in the order of their ids: a
# client that saw id N (`after=N`) never misses a smaller id committed later.
# Deleting the room waits; joining does not. The message is inserted only when the
# sender is a member; `is_member` and the message's columns say which refusal, if any.
# The topic is RoomEvents' topic_of(room_id). The answer, MessageSent, is written by
# the statement (shared.sql_json).
SENT = json_object_sql(
    MessageSent,
    {
        "message": "'sent'::text",
        "message_id": "sent.id",
        "created_at": iso_ms_sql("sent.created_at"),
    },
)
_SEND = (
    "WITH room AS ("
    " SELECT r.id, EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id"
    " AND m.username = $2) AS is_member"
    " FROM rooms r WHERE r.id = $1 FOR NO KEY UPDATE OF r),"
    " sent AS ("
    " INSERT INTO room_messages (room_id, username, body)"
    " SELECT room.id, $2, $3 FROM room WHERE room.is_member"
    " RETURNING id, created_at{notify})"
    " SELECT room.is_member, sent.id AS message_id, convert_to({answer}, 'UTF8') AS answer"
    " FROM room LEFT JOIN sent ON true"
)
# A RETURNING column over room_messages: {"message_id": id} on the room's topic, to
# the channel in $4.
NOTIFY_SENT = notify_sql("$4", "room_id::text", "json_build_object('message_id', id)")
SEND_MESSAGE = _SEND.format(notify="", answer=SENT)
SEND_MESSAGE_AND_NOTIFY = _SEND.format(notify=", " + NOTIFY_SENT, answer=SENT)


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: int
    answer: bytes  # MessageSent's JSON, as `json_model` would write it


async def send_message(
    conn: Conn | asyncpg.Pool,
    room_id: int,
    username: str,
    text: str,
    events: Events | None = None,
) -> Sent:
    """Stores a member's message and, with `events`, tells the room's listeners on
    commit: in one statement, atomic by itself or inside the caller's transaction."""
    if events is None:
        row = await conn.fetchrow(SEND_MESSAGE, room_id, username, text)
    else:
        row = await conn.fetchrow(SEND_MESSAGE_AND_NOTIFY, room_id, username, text, events.channel)
    if row is None:
        raise RoomNotFound
    if not row["is_member"]:
        raise NotAMember
    return Sent(row["message_id"], row["answer"])
