"""The lookup by code's JSON, written by Postgres, is byte for byte what PublicRoom
writes for the same row."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from meeting_service.models import PublicRoom
from tests.meeting_service.conftest import create_room

NAMES = [
    "plain",
    "é, 日本語, 😀, עברית",
    "tab\there, new\nline, \b\f\x01\x1f\x7f",
    'quotes " \' and \\ backslashes \\" </script>',
    "\u2028\u2029\ufeff",
]


def public_room(row: asyncpg.Record) -> bytes:
    room = PublicRoom.model_validate(
        {
            "id": row["id"],
            "code": row["code"],
            "name": row["name"],
            "is_active": row["is_active"],
            "is_locked": row["is_locked"],
            "host": {
                "id": row["host_id"],
                "display_name": row["host_display_name"],
                "avatar_url": row["host_avatar_url"],
            },
            "settings": {
                "waiting_room": row["waiting_room"],
                "allow_guest_access": row["allow_guest_access"],
            },
        }
    )
    return room.__pydantic_serializer__.to_json(room, by_alias=True)


async def test_the_rooms_json_is_the_models_for_the_same_row(
    service: TestClient, make_token: Any, db: asyncpg.Connection
) -> None:
    room = await create_room(service, make_token("alice", name="Alice"), name="Open house")
    for index, name in enumerate(NAMES):
        flags = [bool(index >> bit & 1) for bit in range(4)]
        await db.execute(
            "UPDATE meeting.rooms SET name = $2, host_display_name = $3, host_avatar_url = $4,"
            " is_active = $5, ended_at = CASE WHEN $5 THEN NULL ELSE now() END,"
            " is_locked = $6, waiting_room = $7, allow_guest_access = $8"
            " WHERE id = $1",
            room["id"],
            name,
            name[::-1],
            None if index % 2 else f"https://img.example/{name}.png",
            *flags,
        )
        row = await db.fetchrow("SELECT * FROM meeting.rooms WHERE id = $1", room["id"])
        async with service.get(f"/rooms/code/{room['code']}") as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            assert await response.read() == public_room(row), name
