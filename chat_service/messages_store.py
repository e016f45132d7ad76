"""A room's history: pages of its messages (written as JSON by Postgres), and the
messages the room's WebSocket replays and pushes."""

from __future__ import annotations

import asyncpg
from pydantic import TypeAdapter

from chat_service.models import ChatMessage, MessagePage, MessagesAfter
from chat_service.store import require_member
from shared.db import Conn
from shared.sql_json import Json, json_object_sql
from shared.timefmt import iso_ms_sql

NO_UPPER_BOUND = 2**63 - 1

# A message as the history shows it; created_at in the API's form already.
MESSAGE_COLUMNS = (
    "id AS message_id, room_id, username, body AS message,"
    f" {iso_ms_sql('created_at')} AS created_at"
)
# Pages of a room's messages along the primary key (room_id, id): see
# migrations/002_keysets.sql. Backwards from $2 (exclusive) or forwards from it.
_PAGE = (
    "SELECT {columns} FROM room_messages"
    " WHERE room_id = $1 AND id {direction} $2{member} ORDER BY id{order} LIMIT $3"
)
# Only for a member ($4): an uncorrelated EXISTS, so Postgres checks it once (an
# InitPlan) before the scan, and a member's page is one round trip. No rows is
# then an empty page, a non-member or no room: only that case asks which.
_MEMBER = " AND EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = $1 AND m.username = $4)"
_BACKWARDS = {"direction": "<", "order": " DESC"}
_FORWARDS = {"direction": ">", "order": ""}
MESSAGES_PAGE = _PAGE.format(columns=MESSAGE_COLUMNS, member="", **_BACKWARDS)
MESSAGES_NEWER = _PAGE.format(columns=MESSAGE_COLUMNS, member="", **_FORWARDS)
MESSAGE_BY_ID = f"SELECT {MESSAGE_COLUMNS} FROM room_messages WHERE id = $1"  # noqa: S608

# A member's page as the API's JSON, written by Postgres (shared.sql_json) from
# ChatMessage's and the page model's fields: the service passes its bytes on, with
# no row decoded, validated or serialised. The page's scan (limit + 1 rows, $3) with
# the membership check (_MEMBER), aggregated in its order; `found` rows (0: an
# empty page, a non-member or no room, which only then is asked).
_MESSAGE_JSON = json_object_sql(
    ChatMessage,
    {
        "message_id": "id",
        "room_id": "room_id",
        "username": "username",
        "message": "body",
        "created_at": iso_ms_sql("created_at"),
    },
)
# The first $3 - 1 messages, and the last one's id when there are more.
_LISTED = Json("'[' || coalesce(array_to_string(messages[1:$3 - 1], ','), '') || ']'")
_NEXT = "CASE WHEN cardinality(ids) >= $3 THEN ids[$3 - 1] END"
_PAGE_JSON = (
    "SELECT coalesce(cardinality(ids), 0) AS found, convert_to({page}, 'UTF8') AS body"
    " FROM (SELECT array_agg(message ORDER BY id{order}) AS messages,"
    " array_agg(id ORDER BY id{order}) AS ids FROM ({rows}) page) pages"
)
_JSON_ROWS = f"id, {_MESSAGE_JSON} AS message"
MEMBER_PAGE_JSON = _PAGE_JSON.format(
    page=json_object_sql(MessagePage, {"messages": _LISTED, "next_before": _NEXT}),
    rows=_PAGE.format(columns=_JSON_ROWS, member=_MEMBER, **_BACKWARDS),
    order=" DESC",
)
MEMBER_NEWER_JSON = _PAGE_JSON.format(
    page=json_object_sql(MessagesAfter, {"messages": _LISTED, "next_after": _NEXT}),
    rows=_PAGE.format(columns=_JSON_ROWS, member=_MEMBER, **_FORWARDS),
    order="",
)


async def _member_json(
    pool: asyncpg.Pool, statement: str, room_id: int, username: str, bound: int, limit: int
) -> bytes:
    async with pool.acquire() as conn:
        # An aggregate: one row, whatever the page holds.
        [(found, body)] = await conn.fetch(statement, room_id, bound, limit + 1, username)
        if not found:
            await require_member(conn, room_id, username)
    return bytes(body)


async def messages_page(
    pool: asyncpg.Pool, room_id: int, username: str, *, limit: int, before: int | None
) -> bytes:
    """A member's page of a room's history, newest first, and the id to page on
    from: the JSON of a MessagePage."""
    bound = before if before is not None else NO_UPPER_BOUND
    return await _member_json(pool, MEMBER_PAGE_JSON, room_id, username, bound, limit)


async def messages_after(
    pool: asyncpg.Pool, room_id: int, username: str, *, limit: int, after: int
) -> bytes:
    """A member's messages newer than `after`, oldest first, and the id to page on
    from while there are more: the JSON of a MessagesAfter."""
    return await _member_json(pool, MEMBER_NEWER_JSON, room_id, username, after, limit)


# Rows of our own database, checked in one call rather than a call per row.
_MESSAGES = TypeAdapter(list[ChatMessage])


def _messages(rows: list[asyncpg.Record]) -> list[ChatMessage]:
    return _MESSAGES.validate_python([dict(row) for row in rows])


async def messages_newer(
    pool: Conn | asyncpg.Pool, room_id: int, *, after: int, limit: int
) -> list[ChatMessage]:
    """Up to `limit` of the room's messages newer than `after`, oldest first."""
    return _messages(await pool.fetch(MESSAGES_NEWER, room_id, after, limit))


async def message_by_id(pool: asyncpg.Pool, message_id: int) -> ChatMessage | None:
    row = await pool.fetchrow(MESSAGE_BY_ID, message_id)
    return ChatMessage.model_validate(dict(row)) if row is not None else None
