"""Text Postgres cannot store (NUL, lone surrogates) is refused, never a 500."""

from __future__ import annotations

import pytest

from shared.cursors import encode_cursor
from tests.conftest import bearer
from tests.meeting_service.conftest import create_room, join

NUL = "a\x00b"
SURROGATE = "a\ud800b"
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("escaped", "message"),
    [
        ("a\\u0000b", "Value error, must not contain NUL characters"),
        (
            "a\\ud800b",
            "Input should be a valid string, unable to parse raw data as a unicode string",
        ),
    ],
)
async def test_bodies(api, make_token, db, escaped, message):
    token = make_token("alice")
    headers = {**bearer(token), **JSON}
    response = await api.post("/rooms", data=f'{{"name": "{escaped}"}}', headers=headers)
    assert response.status == 400
    assert await response.json() == {
        "error": f"name: {message}",
        "code": "invalid_fields",
        "details": [{"field": "name", "message": message}],
    }
    room = await create_room(api, token)
    response = await api.patch(
        f"/rooms/{room['id']}/settings", data=f'{{"name": "{escaped}"}}', headers=headers
    )
    assert response.status == 400
    assert (await response.json())["error"] == f"name: {message}"
    response = await api.post(
        f"/rooms/{room['id']}/messages", data=f'{{"content": "{escaped}"}}', headers=headers
    )
    assert response.status == 400
    assert (await response.json())["error"] == f"content: {message}"
    assert await db.fetchval("SELECT count(*) FROM meeting.messages") == 0


async def test_path_and_query(api, make_token):
    token = make_token("alice")
    room = await create_room(api, token)
    await join(api, token, room["code"])
    not_found = {"error": "Room not found", "code": "room_not_found"}
    for path in (
        "/rooms/a%00b",
        "/rooms/a%00b/participants",
        "/rooms/a%00b/messages",
    ):
        response = await api.get(path, headers=bearer(token))
        assert response.status == 404, path
        assert await response.json() == not_found
    response = await api.post("/rooms/code/abc%00def/join", headers=bearer(token))
    assert response.status == 404
    assert await response.json() == not_found
    response = await api.get("/rooms/code/abc%00def")
    assert response.status == 404
    response = await api.post(
        f"/rooms/{room['id']}/participants/a%00b/admit", headers=bearer(token)
    )
    assert response.status == 404
    assert await response.json() == {
        "error": "Participant not found",
        "code": "participant_not_found",
    }
    response = await api.get(
        f"/rooms/{room['id']}/messages", params={"before": NUL}, headers=bearer(token)
    )
    assert response.status == 400
    assert (await response.json())[
        "error"
    ] == "before: Value error, must not contain NUL characters"
    for position in (["2026-01-01T00:00:00+00:00", NUL], ["2026-01-01T00:00:00+00:00", SURROGATE]):
        response = await api.get(
            "/rooms", params={"cursor": encode_cursor(*position)}, headers=bearer(token)
        )
        assert response.status == 400
        assert await response.json() == {"error": "invalid cursor", "code": "invalid_cursor"}
