"""A room's history: pages of its messages (written as JSON by Postgres), and the
messages the room's WebSocket replays and pushes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg
from pydantic import TypeAdapter

from chat_service import store
from chat_service.history_cache import CachedPage, PageCache, PageKey
from chat_service.models import ChatMessage, MessagePage, MessagesAfter
from chat_service.store import NotAMember
from shared.batching import Batcher, Outcome
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
# migrations/002_keysets.sql. Backwards from `bound` (exclusive) or forwards from it;
# the one-page statements take them as $1-$3, the batched one from each item.
_ONE = {"room": "$1", "bound": "$2", "limit": "$3"}
_PAGE = (
    "SELECT {columns} FROM room_messages"
    " WHERE room_id = {room} AND id {direction} {bound} ORDER BY id{order} LIMIT {limit}"
)
_BACKWARDS = {"direction": "<", "order": " DESC"}
_FORWARDS = {"direction": ">", "order": ""}
MESSAGES_PAGE = _PAGE.format(columns=MESSAGE_COLUMNS, **_BACKWARDS, **_ONE)
MESSAGES_NEWER = _PAGE.format(columns=MESSAGE_COLUMNS, **_FORWARDS, **_ONE)
MESSAGE_BY_ID = f"SELECT {MESSAGE_COLUMNS} FROM room_messages WHERE id = $1"  # noqa: S608

# A member's page as the API's JSON, written by Postgres (shared.sql_json) from
# ChatMessage's and the page model's fields: the service passes its bytes on, with
# no row decoded, validated or serialised. The page's scan (limit + 1 rows)
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
_JSON_ROWS = f"id, {_MESSAGE_JSON} AS message"


def _page_json(*, forwards: bool, room: str, bound: str, limit: str) -> str:
    """The page's JSON (a MessagesAfter forwards, else a MessagePage) as a scalar
    subquery: the first `limit` - 1 messages, and the last one's id when there are more."""
    model, next_field = (MessagesAfter, "next_after") if forwards else (MessagePage, "next_before")
    direction = _FORWARDS if forwards else _BACKWARDS
    page = json_object_sql(
        model,
        {
            "messages": Json(
                f"'[' || coalesce(array_to_string(messages[1:{limit} - 1], ','), '') || ']'"
            ),
            next_field: f"CASE WHEN cardinality(ids) >= {limit} THEN ids[{limit} - 1] END",
        },
    )
    rows = _PAGE.format(columns=_JSON_ROWS, room=room, bound=bound, limit=limit, **direction)
    order = direction["order"]
    return (
        f"SELECT convert_to({page}, 'UTF8')"  # noqa: S608 (the module's own SQL)
        f" FROM (SELECT array_agg(message ORDER BY id{order}) AS messages,"
        f" array_agg(id ORDER BY id{order}) AS ids FROM ({rows}) page) pages"
    )


def _checks(room: str, username: str) -> str:
    """The room's newest message id (0 for none) and whether `username` is a member."""
    return (
        f"SELECT coalesce((SELECT max(id) FROM room_messages WHERE room_id = {room}), 0)"  # noqa: S608
        " AS newest, EXISTS (SELECT 1 FROM room_members m"
        f" WHERE m.room_id = {room} AND m.username = {username}) AS member OFFSET 0"
    )


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
    " FROM ({checks}) checked"
)
PAGE_JSON = _CHECKED_PAGE.format(
    page=_page_json(forwards=False, **_ONE), checks=_checks("$1", "$4")
)
NEWER_JSON = _CHECKED_PAGE.format(
    page=_page_json(forwards=True, **_ONE), checks=_checks("$1", "$4")
)
# The same for several reads at once (the reads of one turn of the event loop,
# chat_service.sending): one row per item of the arrays, answering what PAGE_JSON or
# NEWER_JSON (`forwards`) answers for it alone. The checks are a LATERAL subquery per
# item, and each direction's page a SubPlan of the CASE, run only for the items whose
# branch is taken: a cached page costs the two index probes alone here too. Rows
# come in no particular order: `ord` says which item each answers.
_ITEM = {"room": "item.room_id", "bound": "item.bound", "limit": "item.lim"}
PAGES_JSON = (
    "SELECT item.ord, newest, member, CASE WHEN member AND newest <> item.known THEN"  # noqa: S608
    f" CASE WHEN item.forwards THEN ({_page_json(forwards=True, **_ITEM)})"
    f" ELSE ({_page_json(forwards=False, **_ITEM)}) END END AS body"
    " FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::int[],"
    " $6::bool[]) WITH ORDINALITY AS item(room_id, username, known, bound, lim, forwards, ord)"
    f" CROSS JOIN LATERAL ({_checks('item.room_id', 'item.username')}) checked"
)


@dataclass(frozen=True, slots=True)
class PageRead:
    """A read of one page by `username`, whose cached copy (if any) was built when the
    room's newest message id was `known` (NOT_CACHED without one)."""

    key: PageKey
    username: str
    known: int


@dataclass(frozen=True, slots=True)
class Checked:
    """What Postgres said of a PageRead: the room's newest id, and the page's JSON
    unless the cached copy is still exact (`known` is `newest`)."""

    newest: int
    body: bytes | None


# The app's batcher of page reads (chat_service.sending).
PageReads: TypeAlias = Batcher[PageRead, Checked]


def _checked(newest: int, body: bytes | None) -> Checked:
    return Checked(newest, bytes(body) if body is not None else None)


async def _refusal(conn: Conn, read: PageRead) -> store.StoreError:
    """Why a read the page's statement found no member for is refused: no such room,
    or not a member (a member now, not at the page's snapshot: they joined since)."""
    try:
        await store.require_member(conn, read.key.room_id, read.username)
    except store.StoreError as exc:
        return exc
    return NotAMember()


async def check_page(pool: asyncpg.Pool, read: PageRead) -> Checked:
    """One read alone: PAGE_JSON or NEWER_JSON."""
    key = read.key
    statement = NEWER_JSON if key.forwards else PAGE_JSON
    async with pool.acquire() as conn:
        [(newest, member, body)] = await conn.fetch(
            statement, key.room_id, key.bound, key.limit + 1, read.username, read.known
        )
        if not member:
            raise await _refusal(conn, read)
    return _checked(newest, body)


async def check_pages(pool: asyncpg.Pool, reads: Sequence[PageRead]) -> list[Outcome[Checked]]:
    """`check_page` of each read, in their order, in one statement (PAGES_JSON); a
    read asked twice is asked once. A refused read's outcome is its refusal."""
    unique = list(dict.fromkeys(reads))
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            PAGES_JSON,
            [read.key.room_id for read in unique],
            [read.username for read in unique],
            [read.known for read in unique],
            [read.key.bound for read in unique],
            [read.key.limit + 1 for read in unique],
            [read.key.forwards for read in unique],
        )
        answers: dict[PageRead, Outcome[Checked]] = {}
        for ord_, newest, member, body in rows:
            read = unique[ord_ - 1]
            answers[read] = _checked(newest, body) if member else await _refusal(conn, read)
    return [answers[read] for read in reads]


async def _page(batcher: PageReads, cache: PageCache, key: PageKey, username: str) -> bytes:
    cached = cache.get(key)
    known = cached.newest if cached is not None else NOT_CACHED
    checked = await batcher.submit(PageRead(key, username, known))
    if checked.body is None:
        assert cached is not None
        cache.served += 1
        return cached.body
    page = CachedPage(checked.newest, checked.body)
    cache.built += 1
    cache.put(key, page)
    return page.body


async def messages_page(
    batcher: PageReads,
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
    return await _page(batcher, cache, key, username)


async def messages_after(
    batcher: PageReads,
    cache: PageCache,
    room_id: int,
    username: str,
    *,
    limit: int,
    after: int,
) -> bytes:
    """A member's messages newer than `after`, oldest first, and the id to page on
    from while there are more: the JSON of a MessagesAfter."""
    key = PageKey(room_id, forwards=True, bound=after, limit=limit)
    return await _page(batcher, cache, key, username)


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
