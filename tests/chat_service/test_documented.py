"""The chat API as /openapi.json documents it, and the edge cases every route shares."""

from __future__ import annotations

import base64

from tests.chat_service.helpers import call, create_room

CHAT_PATHS = {
    "/api/create_room": "post",
    "/api/rooms": "get",
    "/api/user_rooms": "get",
    "/api/join_room": "post",
    "/api/leave_room": "post",
    "/api/delete_room": "post",
    "/api/room_members/{room_id}": "get",
    "/api/send_room_message": "post",
    "/api/get_room_messages": "get",
    "/api/rooms/{room_id}/ws": "get",
}


async def test_every_chat_route_is_documented_from_its_models(service):
    status, doc = await call(service, "GET", "/openapi.json")
    assert status == 200
    for path, method in CHAT_PATHS.items():
        operation = doc["paths"][path][method]
        assert operation["security"] == [{"bearer": []}], path
        assert "401" in operation["responses"], path
    create = doc["paths"]["/api/create_room"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateRoomRequest"
    }
    schema = doc["components"]["schemas"]["CreateRoomRequest"]
    assert schema["required"] == ["room_name"]
    is_private = schema["properties"]["is_private"]
    assert (is_private["type"], is_private["minimum"], is_private["maximum"]) == ("integer", 0, 1)
    assert schema["properties"]["room_name"]["maxLength"] == 100
    history = doc["paths"]["/api/get_room_messages"]["get"]
    assert {p["name"] for p in history["parameters"]} == {"room_id", "limit", "before", "after"}
    message = doc["components"]["schemas"]["ChatMessage"]["properties"]
    assert set(message) == {"message_id", "room_id", "username", "message", "created_at"}
    assert message["created_at"]["format"] == "date-time"


async def test_a_body_over_a_mebibyte_is_refused(api, auth):
    room_id = await create_room(api, auth(), "r")
    body = b'{"room_id": %d, "message": "%s"}' % (room_id, b"x" * (1024 * 1024))
    headers = {**auth(), "Content-Type": "application/json"}
    assert await call(api, "POST", "/api/send_room_message", headers, data=body) == (
        413,
        {"error": "request body too large", "code": "body_too_large"},
    )


async def test_every_answer_carries_a_request_id(api, auth):
    async with api.post("/api/create_room", headers={**auth(), "X-Request-ID": "abc-123"}) as r:
        assert (r.status, r.headers["X-Request-ID"]) == (400, "abc-123")


async def test_deeply_nested_json_is_a_400_not_a_crash(api, auth):
    headers = {**auth(), "Content-Type": "application/json"}
    for path in ("/api/create_room", "/api/join_room", "/api/send_room_message"):
        for raw in (b"[" * 100_000, b'{"room_name": ' * 50_000):
            assert await call(api, "POST", path, headers, data=raw) == (
                400,
                {"error": "invalid fields received", "code": "invalid_fields"},
            ), path
    cursor = base64.urlsafe_b64encode(b"[" * 5000).decode().rstrip("=")
    answer = await call(api, "GET", "/api/user_rooms", auth(), params={"cursor": cursor})
    assert answer == (400, {"error": "invalid fields received", "code": "invalid_fields"})
