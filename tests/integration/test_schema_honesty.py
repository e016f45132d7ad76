"""What the documents allow is accepted and what they refuse is refused, for the two
cases JSON Schema reads differently from a strict parser: integers written with a zero
fraction (JSON Schema's "integer" includes 10.0) and null in a PATCH body (left out
means unchanged; null is refused, and the schema says so)."""

from __future__ import annotations

from tests.conftest import Stack


async def test_an_integer_may_be_written_with_a_zero_fraction(gateway_stack: Stack, make_token):
    client = gateway_stack.client
    alice = {"Authorization": f"Bearer {make_token('alice')}"}
    r = await client.post(
        "/api/create_room",
        json={"room_name": "float", "is_private": 1.0, "password": "pw"},
        headers=alice,
    )
    assert r.status == 201
    room_id = (await r.json())["room_id"]
    r = await client.get("/api/rooms", headers=alice)
    assert all(room["name"] != "float" for room in (await r.json())["rooms"])  # private
    r = await client.post(
        "/api/send_room_message",
        json={"room_id": float(room_id), "message": "hi"},
        headers=alice,
    )
    assert r.status == 201
    # A public room ignores its password, whatever it holds, as the seed document says.
    r = await client.post(
        "/api/create_room",
        json={"room_name": "public", "is_private": 0.0, "password": ["x"]},
        headers=alice,
    )
    assert r.status == 201
    for bad in (1.5, "1", True):
        r = await client.post(
            "/api/create_room", json={"room_name": "no", "is_private": bad}, headers=alice
        )
        assert r.status == 400, bad

    r = await client.post("/rooms", json={"maxParticipants": 10.0}, headers=alice)
    assert r.status == 201
    room = await r.json()
    assert room["settings"]["maxParticipants"] == 10
    r = await client.patch(
        f"/rooms/{room['id']}/settings", json={"maxParticipants": 12.0}, headers=alice
    )
    assert (r.status, (await r.json())["settings"]["maxParticipants"]) == (200, 12)
    r = await client.post("/rooms", json={"maxParticipants": 10.5}, headers=alice)
    assert r.status == 400


async def test_null_in_a_patch_body_is_refused_and_documented_so(gateway_stack: Stack):
    document = await (await gateway_stack.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    settings = schemas["MeetingUpdateSettingsBody"]["properties"]
    for name, schema in settings.items():
        assert "anyOf" not in schema and schema.get("type") != "null", name
    profile = schemas["ProfileIn"]["properties"]
    assert profile["displayName"]["type"] == "string"
    # avatarUrl: null removes the avatar, so null stays allowed there.
    assert {"type": "null"} in profile["avatarUrl"]["anyOf"]
    create = schemas["ChatCreateRoomRequest"]
    assert create["if"] == {"properties": {"is_private": {"const": 1}}, "required": ["is_private"]}
    assert create["then"]["required"] == ["password"]
