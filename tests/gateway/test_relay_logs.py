"""A relayed request is logged once, by the service that answered it (same
X-Request-ID); the gateway logs what it answered itself, relays' errors included."""

from __future__ import annotations

import logging
import socket
from typing import Any

from gateway.app import create_app
from shared.logs import AccessLogger
from tests.conftest import bearer, gateway_settings_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def logged_gateway(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, signing_key: Any, url: str
) -> Any:
    settings = gateway_settings_for(database_url, signing_key, chat_url=url, meeting_url=url)
    server = await aiohttp_server(create_app(settings), access_log_class=AccessLogger)
    return await aiohttp_client(server)


def access_lines(caplog: Any) -> list[tuple[str, str, int]]:
    """The gateway's lines (the echo service's test server logs in aiohttp's format)."""
    return [
        (record.request_id, record.path, record.status)
        for record in caplog.records
        if record.name == "aiohttp.access" and hasattr(record, "request_id")
    ]


async def test_the_gateway_leaves_relayed_answers_to_the_services_log(
    aiohttp_server, aiohttp_client, database_url, signing_key, echo, make_token, caplog
):
    url = str(echo.server.make_url(""))
    gateway = await logged_gateway(aiohttp_server, aiohttp_client, database_url, signing_key, url)
    headers = bearer(make_token())
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        for path, status in (("/api/ok", 200), ("/api/missing?status=404", 404)):
            r = await gateway.get(path, headers={**headers, "X-Request-ID": path[5:8]})
            assert r.status == status
        # Its own answers: a refused token, a body over the limit, its own routes.
        r = await gateway.get("/api/ok", headers={"X-Request-ID": "no-token"})
        assert r.status == 401
        r = await gateway.post(
            "/api/up", data=b"x" * (1024 * 1024 + 1), headers={**headers, "X-Request-ID": "big"}
        )
        assert r.status == 413
        r = await gateway.get("/healthz", headers={"X-Request-ID": "health"})
        assert r.status == 200
    assert access_lines(caplog) == [
        ("no-token", "/api/ok", 401),
        ("big", "/api/up", 413),
        ("health", "/healthz", 200),
    ]
    assert [seen["headers"]["X-Request-ID"] for seen in echo.requests] == ["ok", "mis"]


async def test_the_gateway_logs_a_relay_that_found_no_service(
    aiohttp_server, aiohttp_client, database_url, signing_key, make_token, caplog
):
    url = f"http://127.0.0.1:{_free_port()}"
    gateway = await logged_gateway(aiohttp_server, aiohttp_client, database_url, signing_key, url)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        r = await gateway.get("/api/x", headers={**bearer(make_token()), "X-Request-ID": "gone"})
        assert r.status == 502
    assert access_lines(caplog) == [("gone", "/api/x", 502)]
