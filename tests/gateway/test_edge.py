"""The edge (gateway.edge) on one connection: what it relays itself, what it hands to
aiohttp (and when: between requests, in order), keep-alive, timeouts, a client that
hangs up, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from typing import Any

import pytest

from gateway import edge_relay
from gateway.edge import EdgeConnection
from shared.error_codes import code_of
from shared.metrics import METRICS_KEY
from tests.gateway.raw_http import RawClient, request
from tests.gateway.test_edge_identical import relayed_by_the_edge


def called(monkeypatch: pytest.MonkeyPatch, method: str) -> asyncio.Event:
    """Set once an EdgeConnection's `method` has run (it still does all it did)."""
    done = asyncio.Event()
    original = getattr(EdgeConnection, method)

    def noticed(self: EdgeConnection, *args: Any) -> Any:
        result = original(self, *args)
        done.set()
        return result

    monkeypatch.setattr(EdgeConnection, method, noticed)
    return done


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": message, "code": code_of(status, message, validation=False)}


async def test_pipelined_fast_refused_and_fast_requests_are_answered_in_order(
    gateway, echo, make_token, monkeypatch
):
    relayed = relayed_by_the_edge(monkeypatch)
    token = {"Authorization": f"Bearer {make_token()}"}
    client = await RawClient.open(gateway.server.port)
    client.send(
        request("GET", "/api/a", {**token, "X-Request-ID": "one"})
        + request("GET", "/api/b", {"Authorization": "Bearer not-a-token", "X-Request-ID": "two"})
        + request("GET", "/api/c", {**token, "X-Request-ID": "three"})
    )
    first, second, third = [await client.answer() for _ in range(3)]
    assert (first.status, first.header("X-Request-ID")) == (200, "one")
    assert (second.status, second.header("X-Request-ID")) == (401, "two")
    assert json.loads(second.body) == _error(401, "unauthorized")
    assert second.header("WWW-Authenticate") == "Bearer"
    assert (third.status, third.header("X-Request-ID")) == (200, "three")
    assert [r["path_qs"] for r in echo.requests] == ["/api/a", "/api/c"]
    assert relayed == ["/api/a"]  # the rest of the connection was aiohttp's
    await client.close()


async def test_a_websocket_upgrade_after_fast_requests(gateway, make_token, monkeypatch):
    relayed = relayed_by_the_edge(monkeypatch)
    token = make_token()
    client = await RawClient.open(gateway.server.port)
    for path in ("/api/a", "/api/b"):
        client.send(request("GET", path, {"Authorization": token}))
        assert (await client.answer()).status == 200
    key = base64.b64encode(os.urandom(16)).decode()
    client.send(
        request(
            "GET",
            "/api/ws",
            {
                "Authorization": token,
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": key,
                "Sec-WebSocket-Version": "13",
            },
        )
    )
    head = await client.reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    mask = os.urandom(4)
    payload = b"hi"
    client.send(b"\x81\x82" + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    frame = await client.reader.readexactly(2 + len(b"echo:hi"))
    assert frame == b"\x81\x07echo:hi"
    assert relayed == ["/api/a", "/api/b"]
    await client.close()


async def test_a_chunked_body_after_a_fast_request_goes_to_aiohttp_whole(
    gateway, echo, make_token, monkeypatch
):
    relayed = relayed_by_the_edge(monkeypatch)
    token = {"Authorization": make_token()}
    body = os.urandom(3000)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:1000], body[1000:]))
    client = await RawClient.open(gateway.server.port)
    client.send(
        request("GET", "/api/a", token)
        + b"POST /api/up HTTP/1.1\r\nHost: g\r\nAuthorization: "
        + token["Authorization"].encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
    )
    assert (await client.answer()).status == 200
    answer = await client.answer()
    assert answer.status == 200
    seen = json.loads(answer.body)
    assert (seen["length"], seen["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert relayed == ["/api/a"]
    await client.close()


@pytest.mark.parametrize(
    ("refused", "status", "message"),
    [
        (request("POST", "/api/big-body", body=b"x" * 2000), 413, "request body too large"),
        (b"GET /api/x HTTP/1.1\r\nHost: g\r\nBad Header\r\n\r\n", 400, "bad request"),
        (
            b"GET /api/x HTTP/1.1\r\nHost: g\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
            431,
            "request header fields too large",
        ),
        (
            b"GET /api/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: g\r\n\r\n",
            414,
            "request URI too long",
        ),
        (b"BREW /api/x HTTP/1.1\r\nHost: g\r\n\r\n", 501, "method not implemented"),
    ],
)
async def test_refusals_after_a_fast_request_are_aiohttp_s_exact_answers(
    gateway_factory, echo, make_token, refused, status, message
):
    gateway = await gateway_factory(str(echo.server.make_url("")), max_body_bytes=1000)
    token = make_token()
    if status == 413:
        refused = refused.replace(b"Host:", b"Authorization: " + token.encode() + b"\r\nHost:")
    client = await RawClient.open(gateway.server.port)
    client.send(request("GET", "/api/a", {"Authorization": token}) + refused)
    assert (await client.answer()).status == 200
    answer = await client.answer()
    assert answer.status == status
    body = json.loads(answer.body)
    body.pop("request_id", None)
    assert body == _error(status, message)
    await client.close()


async def test_a_client_hanging_up_does_not_cancel_the_relayed_request(
    gateway, echo, make_token, monkeypatch
):
    lost = called(monkeypatch, "connection_lost")
    client = await RawClient.open(gateway.server.port)
    client.send(request("GET", "/api/stall", {"Authorization": make_token()}))
    await echo.stalling.wait()
    (connection,) = gateway.server.runner.server.fronts
    task = connection.task
    await client.close()
    await lost.wait()
    echo.release.set()
    await task
    registry = gateway.server.app[METRICS_KEY].registry
    labels = {"service": "chat", "method": "GET", "route": "/api/{tail}"}
    assert registry.get_sample_value("http_requests_total", {**labels, "status": "200"}) == 1
    assert registry.get_sample_value("http_requests_total", {**labels, "status": "499"}) is None


async def test_idle_and_slow_head_connections_are_closed_after_the_header_timeout(
    gateway_factory, echo, make_token
):
    gateway = await gateway_factory(str(echo.server.make_url("")), header_timeout_s=0.2)
    idle = await RawClient.open(gateway.server.port)
    idle.send(request("GET", "/api/a", {"Authorization": make_token()}))
    assert (await idle.answer()).status == 200
    slow = await RawClient.open(gateway.server.port)
    slow.send(b"GET /api/a HTTP/1.1\r\nHost: g\r\n")
    assert await idle.closed()
    assert await slow.closed()


async def test_shutdown_lets_a_fast_request_finish_and_closes_idle_connections(
    gateway, echo, make_token, monkeypatch
):
    told = called(monkeypatch, "close")
    token = {"Authorization": make_token()}
    idle = await RawClient.open(gateway.server.port)
    idle.send(request("GET", "/api/a", token))
    assert (await idle.answer()).status == 200
    busy = await RawClient.open(gateway.server.port)
    busy.send(request("GET", "/api/stall", token))
    await echo.stalling.wait()
    stopping = asyncio.create_task(gateway.server.close())
    await told.wait()
    assert await idle.closed()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", gateway.server.port)
    echo.release.set()
    answer = await busy.answer()
    assert answer.status == 200
    assert await busy.closed()
    await stopping


async def test_many_pipelined_requests_are_answered_in_order(
    gateway, echo, make_token, monkeypatch
):
    """More than the edge lets wait (it stops reading, then reads on)."""
    relayed = relayed_by_the_edge(monkeypatch)
    token = make_token()
    body = b'{"n": 1}'
    client = await RawClient.open(gateway.server.port)
    client.send(
        b"".join(
            request("POST", f"/api/n{i}", {"Authorization": token, "X-Request-ID": f"n{i}"}, body)
            for i in range(30)
        )
    )
    for i in range(30):
        answer = await client.answer()
        assert (answer.status, answer.header("X-Request-ID")) == (200, f"n{i}")
        assert json.loads(answer.body)["path_qs"] == f"/api/n{i}"
    assert relayed == [f"/api/n{i}" for i in range(30)]
    await client.close()


async def test_the_edge_takes_exactly_the_paths_the_router_relays(database_url, signing_key):
    """Every route of the gateway's own stays aiohttp's, whatever is added later."""
    from aiohttp.test_utils import make_mocked_request

    from gateway.app import create_app
    from gateway.edge_request import ROUTES_KEY
    from tests.conftest import gateway_settings_for

    app = create_app(gateway_settings_for(database_url, signing_key))
    routes = app[ROUTES_KEY]
    relayed = {routes.code, routes.api, routes.rooms, routes.rooms_tail}
    templates = {route.template for route in relayed}
    proxies = {
        route.handler
        for resource in app.router.resources()
        if resource.canonical in templates
        for route in resource
    }
    seen = set()
    paths = [
        resource.canonical.replace("{tail}", "t")
        .replace("{path}", "p")
        .replace("{", "")
        .replace("}", "")
        for resource in app.router.resources()
    ]
    paths += ["/api/", "/api/x/y", "/rooms/", "/rooms/code/abc", "/rooms/code/", "/roomsx", "/apix"]
    for method in ("GET", "HEAD", "POST", "DELETE"):
        for path in paths:
            match = await app.router.resolve(make_mocked_request(method, path))
            proxied = match.http_exception is None and match.handler in proxies
            seen.add(proxied)
            routed = routes.of(method.encode(), path.encode())
            assert (routed is not None) == proxied, (method, path)
            if routed is not None:
                assert routed[0] in relayed
                assert routed[0].template == match.route.resource.canonical, (method, path)
    assert seen == {True, False}


async def test_a_long_answer_waits_for_a_slow_client(gateway, echo, make_token, monkeypatch):
    """Flow control both ways: the edge stops taking the answer from the service
    while the client does not read, and relays all of it once it does."""
    import socket

    paused = called(monkeypatch, "pause_writing")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", gateway.server.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
    writer.write(request("GET", "/api/huge", {"Authorization": make_token()}))
    await paused.wait()
    total = 64 * 1024 * 1024
    assert echo.huge_sent < total  # the service waits too
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # now read briskly
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: %d\r\n" % total in head
    block = bytes(range(256)) * 4096
    for _ in range(64):
        assert await reader.readexactly(len(block)) == block
    assert echo.huge_sent == total
    writer.close()
    await writer.wait_closed()


async def test_a_bug_in_the_edge_s_relay_is_the_api_s_500_and_the_connection_goes_on(
    gateway, echo, make_token, monkeypatch, caplog
):
    relayed = relayed_by_the_edge(monkeypatch)
    head_bytes = edge_relay.head_bytes
    broken = {"/api/broken"}

    def failing(method: bytes, target: bytes, *args: Any, **kwargs: Any) -> bytes:
        if target.decode() in broken:
            raise RuntimeError("a bug")
        return head_bytes(method, target, *args, **kwargs)

    monkeypatch.setattr(edge_relay, "head_bytes", failing)
    token = {"Authorization": f"Bearer {make_token()}"}
    client = await RawClient.open(gateway.server.port)
    client.send(
        request("GET", "/api/broken", {**token, "X-Request-ID": "one"})
        + request("GET", "/api/fine", {**token, "X-Request-ID": "two"})
    )
    first, second = [await client.answer() for _ in range(2)]
    assert (first.status, first.header("X-Request-ID")) == (500, "one")
    assert first.header("Content-Type") == "application/json; charset=utf-8"
    assert json.loads(first.body) == _error(500, "internal error")
    assert (second.status, second.header("X-Request-ID")) == (200, "two")
    assert relayed == ["/api/broken", "/api/fine"]
    assert [r["path_qs"] for r in echo.requests] == ["/api/fine"]
    assert [r.getMessage() for r in caplog.records if r.exc_info] == ["unhandled error"]
    registry = gateway.server.app[METRICS_KEY].registry
    labels = {"service": "gateway", "method": "GET", "route": "/api/{tail}", "status": "500"}
    assert registry.get_sample_value("http_requests_total", labels) == 1
    await client.close()
