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
