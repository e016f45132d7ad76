"""Room names people read: one Unicode form (NFC), something visible, nothing that
reorders the text around them."""

from __future__ import annotations

import unicodedata

import pytest

from tests.chat_service.helpers import INVALID, NAME_TAKEN, call

PATH = "/api/create_room"
CAFE_NFC = unicodedata.normalize("NFC", "Café Crème")
CAFE_NFD = unicodedata.normalize("NFD", "Café Crème")

UNREADABLE = [
    "\u200b\u200b",  # zero-width spaces only
    "\ufeff",  # a byte-order mark
    "\u200e\u200f\u061c",  # bidi marks only
    "\u2066\u2069",  # isolates only
    "\u3164",  # the Hangul filler, drawn as nothing
    "\u200b \u2800",  # a zero-width space, a space, the blank Braille pattern
    "lobby\x1b[31m",  # ESC
    "a\x01b",
    "a\x85b",  # C1 next line
    "a\u2028b",  # line separator
    "\u202eevil.exe",  # right-to-left override
    "admin\u202a",  # left-to-right embedding
    "x\u2067y",  # right-to-left isolate
]


@pytest.mark.parametrize("name", UNREADABLE)
async def test_unreadable_names_are_refused(api, auth, db, name):
    body = {"room_name": name, "is_private": 0}
    assert await call(api, "POST", PATH, auth(), json=body) == (400, INVALID)
    assert await db.fetchval("SELECT count(*) FROM chat.rooms") == 0


async def test_names_differing_only_in_normal_form_collide(api, auth, db):
    assert CAFE_NFC != CAFE_NFD
    status, body = await call(api, "POST", PATH, auth("alice"), json={"room_name": CAFE_NFD})
    assert status == 201
    assert body["message"] == f'room "{CAFE_NFC}" created'
    assert await db.fetchval("SELECT name FROM chat.rooms") == CAFE_NFC
    second = {"room_name": CAFE_NFC}
    assert await call(api, "POST", PATH, auth("bob"), json=second) == (400, NAME_TAKEN)
    # And joining by the other form finds the same room.
    status, body = await call(api, "POST", "/api/join_room", auth("bob"), json={"name": CAFE_NFD})
    assert status == 200, body
    assert await db.fetchval("SELECT count(*) FROM chat.rooms") == 1


@pytest.mark.parametrize(
    "name",
    [
        "שלום\u200f עולם",  # a right-to-left mark inside a Hebrew name
        "👩\u200d💻 devs",  # a zero-width joiner inside an emoji sequence
        "می\u200cخواهم",  # noqa: RUF001 - a zero-width non-joiner, as Persian writes it
    ],
)
async def test_names_may_keep_the_marks_scripts_need(api, auth, db, name):
    status, _ = await call(api, "POST", PATH, auth(), json={"room_name": name})
    assert status == 201
    assert await db.fetchval("SELECT name FROM chat.rooms") == name
