"""The gateway's metrics against the echo upstream: in-flight requests, 502 and 504
counted per upstream, login refusals counted and written to the audit log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket

from tests.conftest import bearer
from tests.integration.metrics_helpers import scrape, until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_in_flight_counts_a_request_until_it_is_answered(gateway, echo, make_token):
    # The scrape is itself a request in flight: 1 when nothing else is.
    assert (await scrape(gateway)).value("http_requests_in_flight") == 1
    stalled = asyncio.create_task(gateway.get("/api/stall", headers=bearer(make_token())))

    async def two_in_flight() -> bool:
        return (await scrape(gateway)).value("http_requests_in_flight") == 2

    await until(two_in_flight)
    echo.release.set()
    assert (await stalled).status == 200
    metrics = await scrape(gateway)
    assert metrics.value("http_requests_in_flight") == 1
    # The echo upstream names no route template: the gateway's own stands in.
    labels = {"service": "chat", "method": "GET", "route": "/api/{tail}"}
    assert metrics.value("http_requests_total", **labels, status="200") == 1
    assert metrics.value("http_request_duration_seconds_count", **labels) == 1


async def test_502_is_counted_per_upstream(gateway_factory, make_token):
    gateway = await gateway_factory(f"http://127.0.0.1:{_free_port()}")
    for _ in range(2):
        assert (await gateway.get("/api/rooms", headers=bearer(make_token()))).status == 502
    assert (await gateway.post("/rooms", json={}, headers=bearer(make_token()))).status == 502
    metrics = await scrape(gateway)
    assert metrics.value("gateway_upstream_errors_total", service="chat", status="502") == 2
    assert metrics.value("gateway_upstream_errors_total", service="meeting", status="502") == 1
    assert metrics.value("gateway_upstream_errors_total", status="504") is None
    # The request itself is counted under its upstream, at the gateway's route.
    assert (
        metrics.value("http_requests_total", service="meeting", route="/rooms", status="502") == 1
    )


async def test_504_is_counted_per_upstream(gateway_factory, echo, make_token):
    gateway = await gateway_factory(str(echo.server.make_url("")), upstream_timeout_s=0.3)
    assert (await gateway.get("/api/stall", headers=bearer(make_token()))).status == 504
    metrics = await scrape(gateway)
    assert metrics.value("gateway_upstream_errors_total", service="chat", status="504") == 1
    assert metrics.value("gateway_upstream_errors_total", service="meeting", status="504") is None


async def test_login_refusals_are_counted_and_audited_without_the_password(gateway):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    from shared.logs import JsonFormatter

    handler.setFormatter(JsonFormatter("gateway"))
    audit = logging.getLogger("gateway.audit")
    audit.addHandler(handler)
    try:
        r = await gateway.post(
            "/auth/register", json={"username": "alice", "password": "right-password"}
        )
        assert r.status == 201
        user_id = (await r.json())["user"]["id"]
        metrics = await scrape(gateway)
        assert metrics.value("gateway_login_refusals_total", reason="credentials") == 0
        assert metrics.value("gateway_login_refusals_total", reason="limited") == 0
        statuses = []
        for _ in range(6):
            r = await gateway.post(
                "/auth/login", json={"username": "alice", "password": "wrong-password"}
            )
            statuses.append(r.status)
        assert statuses == [401] * 5 + [429]
        r = await gateway.post("/auth/login", json={"username": "nobody", "password": "whatever1"})
        assert r.status == 401
    finally:
        audit.removeHandler(handler)
    metrics = await scrape(gateway)
    assert metrics.value("gateway_login_refusals_total", reason="credentials") == 6
    assert metrics.value("gateway_login_refusals_total", reason="limited") == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["msg"], line["reason"], line["login"], line["user_id"]) for line in lines] == [
        *[("login refused", "credentials", "alice", user_id)] * 5,
        ("login locked out", "limited", "alice", user_id),
        ("login refused", "credentials", "nobody", None),
    ]
    assert all(line["audit"] == "login_refused" and line["client"] for line in lines)
    assert lines[5]["retry_after_s"] > 0
    assert "wrong-password" not in stream.getvalue()
