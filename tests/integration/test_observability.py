"""Logs are JSON lines with the request id and no secrets; metrics count by route template."""

import io
import json
import logging

from chat_service.app import create_app
from chat_service.settings import ChatSettings
from shared.logs import AccessLogger, JsonFormatter


async def test_log_lines_are_json_with_the_request_id_and_no_token(
    aiohttp_server, aiohttp_client, database_url, jwks_json, make_token
):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("chat"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        app = create_app(ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4))
        server = await aiohttp_server(app, access_log_class=AccessLogger)
        client = await aiohttp_client(server)
        token = make_token("alice")
        r = await client.get(
            f"/api/rooms?access_token={token}",
            headers={"Authorization": token, "X-Request-ID": "trace-1"},
        )
        assert r.status == 200
        r = await client.post(
            "/api/create_room",
            json={"room_name": "secret room", "is_private": 1, "password": "hunter2-password"},
            headers={"Authorization": token, "X-Request-ID": "trace-2"},
        )
        assert r.status == 201
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "aiohttp.access"]
    assert [(line["request_id"], line["path"], line["status"]) for line in access] == [
        ("trace-1", "/api/rooms", 200),
        ("trace-2", "/api/create_room", 201),
    ]
    assert all(line["service"] == "chat" and line["level"] == "info" for line in access)
    text = stream.getvalue()
    assert token not in text
    assert "hunter2-password" not in text


async def test_metrics_count_requests_by_route_template(gateway_stack, make_token):
    client = gateway_stack.client
    headers = {"Authorization": make_token("alice")}
    for _ in range(3):
        await client.get("/api/room_members/1", headers=headers)
    await client.get("/api/room_members/2", headers=headers)
    text = await (await client.get("/metrics")).text()
    assert "# TYPE http_requests_total counter" in text
    assert "http_request_duration_seconds_bucket" in text
    proxied = [
        line
        for line in text.splitlines()
        if line.startswith("http_requests_total")
        and 'route="/api/{tail' in line
        and 'method="GET"' in line
    ]
    assert len(proxied) == 1, proxied
    assert proxied[0].endswith(" 4.0")
    # No label carries a raw id.
    assert "/api/room_members/1" not in text
