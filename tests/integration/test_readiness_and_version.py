"""The gateway's /readyz is its own readiness: one service down leaves it ready
(login and the other service still work), with upstream health reported apart.
GET /version on every process."""

from __future__ import annotations

import platform
from importlib.metadata import version

import aiohttp

from tests.conftest import bearer


async def test_one_service_down_does_not_make_the_gateway_unready(gateway_stack, make_token):
    client = gateway_stack.client
    r = await client.get("/readyz")
    assert r.status == 200
    assert await r.json() == {"status": "ready", "checks": {"database": True}}
    r = await client.get("/readyz?upstreams")
    assert await r.json() == {
        "status": "ready",
        "checks": {"database": True},
        "upstreams": {"chat": True, "meeting": True},
    }

    await gateway_stack.chat.close()

    r = await client.get("/readyz")
    assert r.status == 200
    assert await r.json() == {"status": "ready", "checks": {"database": True}}
    r = await client.get("/readyz?upstreams")
    assert r.status == 200
    assert await r.json() == {
        "status": "ready",
        "checks": {"database": True},
        "upstreams": {"chat": False, "meeting": True},
    }
    # The edge still serves: identity, and the service that is up.
    r = await client.post("/auth/register", json={"username": "ada", "password": "12345678"})
    assert r.status == 201
    token = (await r.json())["access_token"]
    r = await client.post("/rooms", json={"name": "Standup"}, headers=bearer(token))
    assert r.status == 201
    r = await client.get("/api/rooms", headers=bearer(token))
    assert r.status == 502


async def test_every_process_tells_its_version(gateway_stack):
    expected = {"version": version("rooms-platform"), "python": platform.python_version()}
    r = await gateway_stack.client.get("/version")
    assert r.status == 200
    assert await r.json() == {"service": "gateway", **expected}
    async with aiohttp.ClientSession() as session:
        for name, server in (("chat", gateway_stack.chat), ("meeting", gateway_stack.meeting)):
            async with session.get(server.make_url("/version")) as r:
                assert r.status == 200
                assert await r.json() == {"service": name, **expected}
