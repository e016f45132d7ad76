"""Display names people read (register, PATCH /auth/me, guests): NFC, something
visible, no control characters or bidi overrides."""

from __future__ import annotations

import unicodedata

import jwt
import pytest

from tests.conftest import AUDIENCE

PASSWORD = "correct horse battery"
UNREADABLE = [
    ("\u200b\u200b", "must contain a visible character"),
    ("\ufeff", "must contain a visible character"),
    ("\u200f\u2067\u2069", "must not contain bidirectional overrides"),
    ("\u2800", "must contain a visible character"),
    ("Al\x1b[2Jice", "must not contain control characters"),
    ("\x01Alice", "must not contain control characters"),
    ("Alice\u202e", "must not contain bidirectional overrides"),
]


def refusal(message: str) -> dict[str, object]:
    return {
        "error": f"displayName: Value error, {message}",
        "code": "invalid_fields",
        "details": [{"field": "displayName", "message": f"Value error, {message}"}],
    }


@pytest.mark.parametrize(("name", "message"), UNREADABLE)
async def test_register_refuses_unreadable_display_names(gateway, db, name, message):
    body = {"username": "alice", "password": PASSWORD, "displayName": name}
    r = await gateway.post("/auth/register", json=body)
    assert r.status == 400
    assert await r.json() == refusal(message)
    assert await db.fetchval("SELECT count(*) FROM gateway.users") == 0


@pytest.mark.parametrize(("name", "message"), UNREADABLE)
async def test_patch_me_and_guest_refuse_unreadable_display_names(gateway, db, name, message):
    r = await gateway.post("/auth/register", json={"username": "alice", "password": PASSWORD})
    auth = {"Authorization": (await r.json())["access_token"]}
    r = await gateway.patch("/auth/me", json={"displayName": name}, headers=auth)
    assert r.status == 400
    assert await r.json() == refusal(message)
    assert await db.fetchval("SELECT display_name FROM gateway.users") == "alice"
    r = await gateway.post("/auth/guest", json={"displayName": name})
    assert r.status == 400
    assert await r.json() == refusal(message)


async def test_display_names_are_stored_and_signed_in_nfc(gateway, db, signing_key):
    nfd = unicodedata.normalize("NFD", "  Zoë Ångström ")
    nfc = unicodedata.normalize("NFC", "Zoë Ångström")
    body = {"username": "zoe", "password": PASSWORD, "displayName": nfd}
    r = await gateway.post("/auth/register", json=body)
    assert r.status == 201
    session = await r.json()
    assert session["user"]["displayName"] == nfc
    assert await db.fetchval("SELECT display_name FROM gateway.users") == nfc
    claims = jwt.decode(
        session["access_token"], signing_key.private_key.public_key(), ["EdDSA"], audience=AUDIENCE
    )
    assert claims["name"] == nfc
    r = await gateway.post("/auth/guest", json={"displayName": nfd})
    token = (await r.json())["access_token"]
    claims = jwt.decode(token, signing_key.private_key.public_key(), ["EdDSA"], audience=AUDIENCE)
    assert claims["name"] == nfc


async def test_a_50_character_name_counts_characters_once_composed(gateway):
    # 50 characters composed, 100 code points decomposed.
    nfd = unicodedata.normalize("NFD", "é" * 50)
    assert len(nfd) == 100
    r = await gateway.post("/auth/guest", json={"displayName": nfd})
    assert r.status == 201
    r = await gateway.post("/auth/guest", json={"displayName": "é" * 51})
    assert r.status == 400
