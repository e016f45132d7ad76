"""/metrics on the real system: the process, the pool, the build, requests counted
by the service's route template (at the gateway too), open WebSockets, the port."""

from __future__ import annotations

import socket
from importlib.metadata import version

import aiohttp
from prometheus_client import generate_latest

from chat_service.app import create_app as create_chat
from chat_service.settings import ChatSettings
from shared.db import POOL_KEY
from shared.metrics import METRICS_KEY, ROUTE_HEADER
from tests.conftest import bearer
from tests.integration.metrics_helpers import Scrape, scrape, until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat_settings(database_url: str, jwks_json: str, **overrides: object) -> ChatSettings:
    return ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4, **overrides)


async def test_process_python_pool_and_build_info(aiohttp_client, database_url, jwks_json):
    client = await aiohttp_client(create_chat(chat_settings(database_url, jwks_json)))
    metrics = await scrape(client)
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "python_gc_objects_collected_total",
    ):
        assert metrics.labels_of(name), name
    assert metrics.labels_of("python_info")[0]["implementation"] == "CPython"
    assert metrics.value("rooms_build_info", service="chat", version=version("rooms-platform")) == 1
    assert metrics.value("db_pool_max_size") == 10
    assert metrics.value("db_pool_in_use") is not None
    # Background work (the start-up idempotency purge) borrows connections too, at
    # moments of its own: read the registry and the pool in one tick, nothing between.
    app = client.server.app
    pool = app[POOL_KEY]

    def in_use_now() -> tuple[float | None, int]:
        sample = Scrape(generate_latest(app[METRICS_KEY].registry).decode())
        return sample.value("db_pool_in_use"), pool.get_size() - pool.get_idle_size()

    seen, lent = in_use_now()
    assert seen == lent
    # A connection borrowed from the pool shows as in use until it is given back.
    async with pool.acquire():
        seen, lent = in_use_now()
        assert seen == lent >= 2  # the LISTEN connection, and this one
    seen, lent = in_use_now()
    assert seen == lent


async def test_the_gateway_counts_proxied_requests_by_the_services_route_templates(
    gateway_stack, make_token
):
    client = gateway_stack.client
    headers = bearer(make_token("alice"))
    for room_id in (1, 2, 3):
        r = await client.get(f"/api/room_members/{room_id}", headers=headers)
        assert r.status == 404
        # The service's route header is for the gateway, not for clients.
        assert ROUTE_HEADER not in r.headers
    r = await client.post("/rooms", json={"name": "Standup"}, headers=headers)
    assert r.status == 201
    room = (await r.json())["id"]
    assert (await client.get(f"/rooms/{room}", headers=headers)).status == 200
    assert (await client.get("/rooms/code/abc-def-ghi")).status == 404
    assert (await client.get("/auth/me", headers=headers)).status == 401

    metrics = await scrape(client)
    members = {"service": "chat", "method": "GET", "route": "/api/room_members/{room_id}"}
    assert metrics.value("http_requests_total", **members, status="404") == 3
    assert metrics.value("http_request_duration_seconds_count", **members) == 3
    meeting = {"service": "meeting", "method": "GET", "route": "/rooms/{room_id}"}
    assert metrics.value("http_requests_total", **meeting, status="200") == 1
    assert metrics.value("http_request_duration_seconds_count", **meeting) == 1
    assert (
        metrics.value(
            "http_requests_total",
            service="meeting",
            method="POST",
            route="/rooms",
            status="201",
        )
        == 1
    )
    code = {"service": "meeting", "route": "/rooms/code/{code}", "status": "404"}
    assert metrics.value("http_requests_total", **code) == 1
    # The gateway's own routes are the gateway's.
    own = {"service": "gateway", "route": "/auth/me", "status": "401"}
    assert metrics.value("http_requests_total", **own) == 1
    # Never the catch-all, never a raw id.
    routes = {labels["route"] for labels in metrics.labels_of("http_requests_total")}
    assert not any("{tail" in route for route in routes), routes
    assert f"/rooms/{room}" not in metrics.text
    assert "/api/room_members/1" not in metrics.text


async def _service_metrics(server) -> Scrape:
    async with aiohttp.ClientSession() as session:
        return await scrape(session, str(server.make_url("/metrics")))


async def test_open_websockets_are_counted_per_route_and_kept_out_of_latency(
    gateway_stack, make_token
):
    client = gateway_stack.client
    token = make_token("alice")
    r = await client.post(
        "/api/create_room", json={"room_name": "General", "is_private": 0}, headers=bearer(token)
    )
    assert r.status == 201
    room = (await r.json())["room_id"]
    route = {"service": "chat", "route": "/api/rooms/{room_id}/ws"}

    async with client.ws_connect(f"/api/rooms/{room}/ws?access_token={token}"):
        at_gateway = await scrape(client)
        at_chat = await _service_metrics(gateway_stack.chat)
        assert at_gateway.value("websockets_open", **route) == 1
        assert at_chat.value("websockets_open", **route) == 1
        # An open WebSocket is not a request in flight: only the scrape is.
        assert at_gateway.value("http_requests_in_flight") == 1
        assert at_chat.value("http_requests_in_flight") == 1

    async def closed_everywhere() -> bool:
        gateway_side = (await scrape(client)).value("websockets_open", **route)
        chat_side = (await _service_metrics(gateway_stack.chat)).value("websockets_open", **route)
        return gateway_side == 0 and chat_side == 0

    await until(closed_everywhere)
    for metrics in (await scrape(client), await _service_metrics(gateway_stack.chat)):
        assert metrics.value("http_requests_total", **route, status="101") == 1
        assert metrics.value("http_request_duration_seconds_count", **route) is None


async def test_metrics_on_a_port_of_their_own(aiohttp_client, database_url, jwks_json):
    port = _free_port()
    settings = chat_settings(database_url, jwks_json, metrics_port=port, metrics_host="127.0.0.1")
    client = await aiohttp_client(create_chat(settings))
    r = await client.get("/metrics")
    assert r.status == 404
    assert (await client.get("/api/rooms")).status == 401
    async with aiohttp.ClientSession() as session:
        metrics = await scrape(session, f"http://127.0.0.1:{port}/metrics")
    assert metrics.value("rooms_build_info", service="chat") == 1
    assert metrics.value("http_requests_total", route="/api/rooms", status="401") == 1
