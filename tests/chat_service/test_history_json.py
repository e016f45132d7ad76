"""A history page's JSON, written by Postgres, is byte for byte what the page's model
writes for the same rows (MessagePage, MessagesAfter)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from pydantic import BaseModel, TypeAdapter

from chat_service.messages_store import MESSAGE_COLUMNS
from chat_service.models import ChatMessage, MessagePage, MessagesAfter
from tests.chat_service.conftest import Headers
from tests.chat_service.helpers import create_room

TEXTS = [
    "plain",
    "é, 日本語, 😀, עברית",
    "tab\there, new\nline, cr\r, \b\f and \x01\x1f\x7f",
    'quotes " \' and \\ backslashes \\" \\\\ </script>',
    "\u2028\u2029\ufeff",
    "x" * 4000,
]
MOMENTS = ["2026-03-03T10:30:00.999999+00:00", "2026-03-03T10:30:01+02:00"]


async def stored_messages(db: asyncpg.Connection, room_id: int) -> None:
    """Messages with every kind of text, written straight into the table (some with
    explicit times down to the microsecond), under a name that needs escaping too."""
    for index, text in enumerate(TEXTS * 2):
        moment = datetime.fromisoformat(MOMENTS[index % 2]) if index % 3 else None
        await db.execute(
            "INSERT INTO chat.room_messages (room_id, username, body, created_at)"
            " VALUES ($1, $2, $3, coalesce($4, now()))",
            room_id,
            "alice" if index % 2 else 'ålice "the" 😀',
            text,
            moment,
        )


async def raw(client: TestClient, headers: dict[str, str], **params: Any) -> bytes:
    query = {key: str(value) for key, value in params.items()}
    async with client.get("/api/get_room_messages", headers=headers, params=query) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/json"
        assert response.charset == "utf-8"
        return await response.read()


async def model_page(
    db: asyncpg.Connection, room_id: int, limit: int, *, before: int | None, after: int | None
) -> bytes:
    """The page as the models write it, from the rows read the plain way."""
    where = "id > $2 ORDER BY id" if after is not None else "id < $2 ORDER BY id DESC"
    rows = await db.fetch(
        f"SELECT {MESSAGE_COLUMNS} FROM chat.room_messages"  # noqa: S608
        f" WHERE room_id = $1 AND {where} LIMIT $3",
        room_id,
        after if after is not None else (before if before is not None else 2**63 - 1),
        limit + 1,
    )
    messages = TypeAdapter(list[ChatMessage]).validate_python([dict(row) for row in rows])
    more = messages[limit - 1].message_id if len(messages) > limit else None
    page: BaseModel
    if after is not None:
        page = MessagesAfter(messages=messages[:limit], next_after=more)
    else:
        page = MessagePage(messages=messages[:limit], next_before=more)
    return page.__pydantic_serializer__.to_json(page, by_alias=True)


async def test_the_pages_json_is_the_models_for_the_same_rows(
    service: TestClient, auth: Headers, db: asyncpg.Connection
) -> None:
    room_id = await create_room(service, auth(), "General")
    empty = await raw(service, auth(), room_id=room_id)
    assert empty == b'{"messages":[],"next_before":null}'
    assert await raw(service, auth(), room_id=room_id, after=0) == (
        b'{"messages":[],"next_after":null}'
    )
    await stored_messages(db, room_id)
    total = len(TEXTS) * 2
    ids = [r["id"] for r in await db.fetch("SELECT id FROM chat.room_messages ORDER BY id")]
    for limit in (1, 5, total - 1, total, total + 1, 50):
        for before in (None, ids[-1], ids[len(ids) // 2], ids[0]):
            params: dict[str, Any] = {"room_id": room_id, "limit": limit}
            if before is not None:
                params["before"] = before
            expected = await model_page(db, room_id, limit, before=before, after=None)
            assert await raw(service, auth(), **params) == expected, (limit, before)
        for after in (0, ids[0], ids[len(ids) // 2], ids[-1]):
            params = {"room_id": room_id, "limit": limit, "after": after}
            expected = await model_page(db, room_id, limit, before=None, after=after)
            assert await raw(service, auth(), **params) == expected, (limit, after)
