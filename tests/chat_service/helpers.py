"""Small steps the chat tests repeat."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

TIMEOUT_S = 10  # an upper bound on waiting, not a pause
INVALID = {"error": "invalid fields received", "code": "invalid_fields"}
UNAUTHORIZED = {"error": "unauthorized", "code": "unauthorized"}
NOT_FOUND = {"error": "room not found", "code": "room_not_found"}
NOT_IN_ROOM = {"error": "you are not in this room", "code": "not_in_room"}
NAME_TAKEN = {"error": "room already exists", "code": "room_name_taken"}


def quota(limit: int = 5) -> dict[str, str]:
    return {
        "error": f"maximum number of public rooms reached ({limit}). Please create a private"
        " room to continue the conversation with the people you would like to",
        "code": "public_room_quota_reached",
    }


async def call(
    client: TestClient,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    async with client.request(method, path, headers=headers, **kwargs) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


async def create_room(
    client: TestClient,
    headers: dict[str, str],
    name: str,
    *,
    password: str | None = None,
) -> int:
    body: dict[str, Any] = {"room_name": name, "is_private": 0 if password is None else 1}
    if password is not None:
        body["password"] = password
    status, answer = await call(client, "POST", "/api/create_room", headers, json=body)
    assert status == 201, answer
    room_id: int = answer["room_id"]
    return room_id


async def join(
    client: TestClient, headers: dict[str, str], name: str, password: str | None = None
) -> tuple[int, Any]:
    body: dict[str, Any] = {"name": name}
    if password is not None:
        body["password"] = password
    return await call(client, "POST", "/api/join_room", headers, json=body)


async def send(
    client: TestClient, headers: dict[str, str], room_id: Any, message: Any
) -> tuple[int, Any]:
    return await call(
        client,
        "POST",
        "/api/send_room_message",
        headers,
        json={"room_id": room_id, "message": message},
    )


async def history(
    client: TestClient, headers: dict[str, str], room_id: Any, **params: Any
) -> tuple[int, Any]:
    query = {"room_id": str(room_id), **{key: str(value) for key, value in params.items()}}
    return await call(client, "GET", "/api/get_room_messages", headers, params=query)


async def until_waiting_on_a_lock(db: Any, pending: asyncio.Future[Any]) -> None:
    """Until a statement of the database waits on a lock; `pending`, the request
    expected to be that statement, must not finish first."""
    async with asyncio.timeout(TIMEOUT_S):
        while not await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ):
            assert not pending.done(), await pending
            await asyncio.sleep(0.01)
