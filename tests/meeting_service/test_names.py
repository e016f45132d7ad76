"""Meeting room names people read: NFC, something visible, no controls or bidi overrides."""

from __future__ import annotations

import unicodedata

import pytest

from tests.conftest import bearer
from tests.meeting_service.conftest import create_room

VISIBLE = "Value error, must contain a visible character"
CONTROL = "Value error, must not contain control characters"
OVERRIDE = "Value error, must not contain bidirectional overrides"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("\u200b\u200b\u200b", VISIBLE),
        ("\ufeff\u200e", VISIBLE),
        ("\u3164", VISIBLE),
        ("stand\x1bup", CONTROL),
        ("\x01", CONTROL),
        ("\u202eputs.exe", OVERRIDE),
        ("x\u2066y\u2069", OVERRIDE),
    ],
)
async def test_unreadable_names_are_refused_naming_the_field(api, make_token, db, name, message):
    token = make_token("alice")
    response = await api.post("/rooms", json={"name": name}, headers=bearer(token))
    assert response.status == 400
    assert await response.json() == {
        "error": f"name: {message}",
        "code": "invalid_fields",
        "details": [{"field": "name", "message": message}],
    }
    room = await create_room(api, token, name="Standup")
    response = await api.patch(
        f"/rooms/{room['id']}/settings", json={"name": name}, headers=bearer(token)
    )
    assert response.status == 400
    assert (await response.json())["details"] == [{"field": "name", "message": message}]
    assert await db.fetchval("SELECT name FROM meeting.rooms") == "Standup"


async def test_names_are_stored_in_nfc(api, make_token, db):
    token = make_token("alice")
    nfd = unicodedata.normalize("NFD", "Réunion d'équipe")
    room = await create_room(api, token, name=nfd)
    nfc = unicodedata.normalize("NFC", nfd)
    assert nfc != nfd
    assert room["name"] == nfc
    assert await db.fetchval("SELECT name FROM meeting.rooms") == nfc
    response = await api.patch(
        f"/rooms/{room['id']}/settings",
        json={"name": unicodedata.normalize("NFD", "Équipe ")},
        headers=bearer(token),
    )
    assert response.status == 200
    assert await db.fetchval("SELECT name FROM meeting.rooms") == "Équipe"
