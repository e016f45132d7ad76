"""A WebSocket upgrade a service refuses is refused through the gateway with the
service's own status and body, as it is directly."""

import base64
import os

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
}


def upgrade_headers(token: str) -> dict[str, str]:
    key = base64.b64encode(os.urandom(16)).decode()
    return {**UPGRADE, "Sec-WebSocket-Key": key, "Authorization": token}


async def test_refused_upgrades_carry_the_services_body(gateway_stack, aiohttp_client, make_token):
    gateway = gateway_stack.client
    chat = await aiohttp_client(gateway_stack.chat)
    owner, stranger = make_token("owner"), make_token("stranger")
    r = await gateway.post(
        "/api/create_room",
        json={"room_name": "Private", "is_private": 1, "password": "pw-123456"},
        headers={"Authorization": owner},
    )
    room_id = (await r.json())["room_id"]
    cases = [
        (
            f"/api/rooms/{room_id}/ws",
            stranger,
            403,
            {"error": "you are not in this room", "code": "not_in_room"},
        ),
        (
            "/api/rooms/999999/ws",
            stranger,
            404,
            {"error": "room not found", "code": "room_not_found"},
        ),
    ]
    for path, token, status, body in cases:
        for client in (gateway, chat):
            r = await client.get(path, headers=upgrade_headers(token))
            assert r.status == status, (path, client is gateway)
            assert await r.json() == body


async def test_a_plain_request_to_a_websocket_route_is_426(
    gateway_stack, aiohttp_client, make_token
):
    gateway = gateway_stack.client
    chat = await aiohttp_client(gateway_stack.chat)
    meeting = await aiohttp_client(gateway_stack.meeting)
    token = make_token("owner")
    r = await gateway.post(
        "/api/create_room",
        json={"room_name": "General", "is_private": 0},
        headers={"Authorization": token},
    )
    chat_room = (await r.json())["room_id"]
    r = await gateway.post("/rooms", json={}, headers={"Authorization": token})
    meeting_room = (await r.json())["id"]
    body = {"error": "websocket upgrade required", "code": "websocket_upgrade_required"}
    for path, template, service in (
        (f"/api/rooms/{chat_room}/ws", "/api/rooms/{room_id}/ws", chat),
        (f"/rooms/{meeting_room}/ws", "/rooms/{room_id}/ws", meeting),
    ):
        for client in (gateway, service):
            r = await client.get(path, headers={"Authorization": token})
            assert r.status == 426, (path, client is gateway)
            assert await r.json() == body
            assert r.headers["Upgrade"] == "websocket"
            assert r.headers["X-Request-ID"]
            # Who may not connect learns that first, as with an upgrade.
            r = await client.get(path)
            assert r.status == 401
            r = await client.get(path, headers={"Authorization": make_token("stranger")})
            assert r.status == 403
        # The OpenAPI document says so.
        document = await (await service.get("/openapi.json")).json()
        assert "426" in document["paths"][template]["get"]["responses"]
