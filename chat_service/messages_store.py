"""A room's history: pages of its messages (written as JSON by Postgres), and the
messages the room's WebSocket replays and pushes."""

from __future__ import annotations

import asyncpg
from pydantic import TypeAdapter

from chat_service.history_cache import CachedPage, PageCache, PageKey
from chat_service.models import ChatMessage, MessagePage, MessagesAfter
from chat_service.store import NotAMember, require_member
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
    " WHERE room_id = $1 AND id {direction} $2 ORDER BY id{order} LIMIT $3"
)
_BACKWARDS = {"direction": "<", "order": " DESC"}
_FORWARDS = {"direction": ">", "order": ""}
MESSAGES_PAGE = _PAGE.format(columns=MESSAGE_COLUMNS, **_BACKWARDS)
MESSAGES_NEWER = _PAGE.format(columns=MESSAGE_COLUMNS, **_FORWARDS)
MESSAGE_BY_ID = f"SELECT {MESSAGE_COLUMNS} FROM room_messages WHERE id = $1"  # noqa: S608

# A member's page as the API's JSON, written by Postgres (shared.sql_json) from
# ChatMessage's and the page model's fields: the service passes its bytes on, with
# no row decoded, validated or serialised. The page's scan (limit + 1 rows, $3)
# aggregated in its order.
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
    "SELECT convert_to({page}, 'UTF8')"
    " FROM (SELECT array_agg(message ORDER BY id{order}) AS messages,"
    " array_agg(id ORDER BY id{order}) AS ids FROM ({rows}) page) pages"
)
_JSON_ROWS = f"id, {_MESSAGE_JSON} AS message"
# One statement, one round trip, for every read of a page (chat_service.history_cache
# says why the newest id alone tells whether a cached page is still exact):
# - `newest`: the room's newest message id (0 for none), max(id) along the primary
#   key (room_id, id), an index-only scan of one entry;
# - `member`: whether $4 is a member, an uncorrelated EXISTS, so checked once;
# - `body`: the page's JSON, only for a member and only when `newest` is not the id
#   ($5) the caller's cached page was built at (-1, NOT_CACHED, without one). The
#   page is an InitPlan of the CASE's branch: Postgres runs it only when the branch
#   is taken, so a cached page costs the two index probes alone.
# Not a member (no such room either): no body, and only then is it asked which.
# OFFSET 0 keeps `checked` a subquery of its own: pulled up, its two expressions
# would each be copied into the CASE, and each copy run as an InitPlan of its own.
NOT_CACHED = -1
_CHECKED_PAGE = (
    "SELECT newest, member, CASE WHEN member AND newest <> $5 THEN ({page}) END AS body"
    " FROM (SELECT coalesce((SELECT max(id) FROM room_messages WHERE room_id = $1), 0)"
    " AS newest, EXISTS (SELECT 1 FROM room_members m"
    " WHERE m.room_id = $1 AND m.username = $4) AS member OFFSET 0) checked"
)
PAGE_JSON = _CHECKED_PAGE.format(
    page=_PAGE_JSON.format(
        page=json_object_sql(MessagePage, {"messages": _LISTED, "next_before": _NEXT}),
        rows=_PAGE.format(columns=_JSON_ROWS, **_BACKWARDS),
        order=" DESC",
    )
)
NEWER_JSON = _CHECKED_PAGE.format(
    page=_PAGE_JSON.format(
        page=json_object_sql(MessagesAfter, {"messages": _LISTED, "next_after": _NEXT}),
        rows=_PAGE.format(columns=_JSON_ROWS, **_FORWARDS),
        order="",
    )
)


async def _page_json(
    pool: asyncpg.Pool, cache: PageCache, key: PageKey, statement: str, username: str
) -> bytes:
    cached = cache.get(key)
    known = cached.newest if cached is not None else NOT_CACHED
    async with pool.acquire() as conn:
        [(newest, member, body)] = await conn.fetch(
            statement, key.room_id, key.bound, key.limit + 1, username, known
        )
        if not member:
            await require_member(conn, key.room_id, username)
            # A member now, not at the page's snapshot: they joined since.
            raise NotAMember
    if body is None:
        assert cached is not None
        cache.served += 1
        return cached.body
    page = CachedPage(newest, bytes(body))
    cache.built += 1
    cache.put(key, page)
    return page.body


async def messages_page(
    pool: asyncpg.Pool,
    cache: PageCache,
    room_id: int,
    username: str,
    *,
    limit: int,
    before: int | None,
) -> bytes:
    """A member's page of a room's history, newest first, and the id to page on
    from: the JSON of a MessagePage."""
    bound = before if before is not None else NO_UPPER_BOUND
    key = PageKey(room_id, forwards=False, bound=bound, limit=limit)
    return await _page_json(pool, cache, key, PAGE_JSON, username)


async def messages_after(
    pool: asyncpg.Pool, cache: PageCache, room_id: int, username: str, *, limit: int, after: int
) -> bytes:
    """A member's messages newer than `after`, oldest first, and the id to page on
    from while there are more: the JSON of a MessagesAfter."""
    key = PageKey(room_id, forwards=True, bound=after, limit=limit)
    return await _page_json(pool, cache, key, NEWER_JSON, username)


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
