"""The HTTP relay's own upstream client (gateway.upstream_client) through the gateway:
kept-alive connections, both framings both ways, answers without a body, a
service that hangs up or stalls, and the pool's bounds."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.upstream_client import Exchange, UpstreamError, UpstreamPool
from tests.conftest import bearer

TIMEOUT_S = 10  # an upper bound, not a pause


class Peers:
    """An aiohttp service that says which of its connections served each request."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.heads: list[dict[str, str]] = []
        self.gate: asyncio.Event | None = None
        self.arrived = 0
        self.all_arrived = asyncio.Event()
        self.expected = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/chunked", self.chunked)
        app.router.add_route("*", "/api/nothing", self.nothing)
        app.router.add_route("*", "/api/not-modified", self.not_modified)
        app.router.add_route("*", "/api/fixed", self.fixed)
        app.router.add_route("*", "/{tail:.*}", self.peer)
        return app

    async def peer(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert request.transport is not None
        port = request.transport.get_extra_info("peername")[1]
        self.ports.append(port)
        self.heads.append(dict(request.headers))
        if self.gate is not None:
            self.arrived += 1
            if self.arrived == self.expected:
                self.all_arrived.set()
            await self.gate.wait()
        return web.json_response(
            {"port": port, "length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        )

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"small and ")
        await response.write_eof(b"chunked")
        return response

    async def nothing(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"X-Kind": "nothing"})

    async def not_modified(self, request: web.Request) -> web.Response:
        return web.Response(status=304, headers={"ETag": '"v1"'})

    async def fixed(self, request: web.Request) -> web.Response:
        return web.Response(body=b"f" * 300_000, content_type="application/octet-stream")


@pytest.fixture
async def peers(aiohttp_server: Any) -> Any:
    peers = Peers()
    peers.server = await aiohttp_server(peers.app())
    yield peers
    if peers.gate is not None:
        peers.gate.set()


@pytest.fixture
async def via(gateway_factory: Any, peers: Peers) -> Any:
    return await gateway_factory(str(peers.server.make_url("")))


async def test_a_kept_alive_connection_serves_one_request_after_another(via, peers, make_token):
    headers = bearer(make_token())
    for i in range(5):
        r = await via.get(f"/api/n{i}", headers=headers)
        assert r.status == 200
    assert len(set(peers.ports)) == 1
    # A POST with its body, a HEAD and a 204 leave the connection as reusable.
    r = await via.post("/api/post", json={"a": 1}, headers=headers)
    assert r.status == 200
    assert (await via.head("/api/head", headers=headers)).status == 200
    assert (await via.get("/api/nothing", headers=headers)).status == 204
    assert (await via.get("/api/last", headers=headers)).status == 200
    assert len(set(peers.ports)) == 1


async def test_a_declared_length_body_goes_up_with_its_length(via, peers, make_token):
    body = os.urandom(200_000)
    r = await via.put("/api/upload", data=body, headers=bearer(make_token()))
    assert r.status == 200
    seen = await r.json()
    assert (seen["length"], seen["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    head = peers.heads[-1]
    assert head["Content-Length"] == str(len(body))
    assert "Transfer-Encoding" not in head


async def test_a_chunked_body_goes_up_chunked(via, peers, make_token):
    async def chunks():
        for _ in range(3):
            yield b"c" * 10_000

    r = await via.post("/api/upload", data=chunks(), headers=bearer(make_token()))
    assert r.status == 200
    assert (await r.json())["length"] == 30_000
    head = peers.heads[-1]
    assert head["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in head


async def test_an_empty_post_is_sent_with_a_zero_length(via, peers, make_token):
    r = await via.post("/api/empty", headers=bearer(make_token()))
    assert r.status == 200
    assert (await r.json())["length"] == 0
    assert peers.heads[-1]["Content-Length"] == "0"


async def test_a_small_chunked_answer_reaches_the_client_with_its_length(via, make_token):
    r = await via.get("/api/chunked", headers=bearer(make_token()))
    assert r.status == 200
    assert await r.read() == b"small and chunked"
    assert r.headers["Content-Length"] == str(len(b"small and chunked"))
    assert "Transfer-Encoding" not in r.headers


async def test_a_large_fixed_length_answer_streams_back_intact(via, make_token):
    r = await via.get("/api/fixed", headers=bearer(make_token()))
    assert r.status == 200
    assert r.headers["Content-Length"] == "300000"
    assert await r.read() == b"f" * 300_000


async def test_answers_without_a_body(via, make_token):
    headers = bearer(make_token())
    r = await via.head("/api/anything", headers=headers)
    assert r.status == 200
    assert await r.read() == b""
    r = await via.get("/api/nothing", headers=headers)
    assert (r.status, r.headers["X-Kind"], await r.read()) == (204, "nothing", b"")
    r = await via.get("/api/not-modified", headers=headers)
    assert (r.status, r.headers["ETag"], await r.read()) == (304, '"v1"', b"")


async def test_many_concurrent_requests_never_open_more_than_the_pool(
    gateway_factory, peers, make_token
):
    via = await gateway_factory(str(peers.server.make_url("")), upstream_pool_size=4)
    headers = bearer(make_token())
    peers.gate, peers.expected = asyncio.Event(), 4
    pending = [asyncio.ensure_future(via.get(f"/api/c{i}", headers=headers)) for i in range(40)]
    # Four requests reach the service and wait there: the pool is full.
    await asyncio.wait_for(peers.all_arrived.wait(), TIMEOUT_S)
    assert peers.arrived == 4
    peers.gate.set()
    responses = await asyncio.wait_for(asyncio.gather(*pending), TIMEOUT_S)
    assert [r.status for r in responses] == [200] * 40
    assert len(set(peers.ports)) == 4


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def raw_upstream() -> Any:
    """raw_upstream(handler) -> the URL of a bare TCP server running `handler`."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def test_a_service_that_hangs_up_mid_answer_cuts_the_clients_connection(
    gateway_factory, raw_upstream, make_token
):
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        await writer.drain()
        writer.close()

    via = await gateway_factory(await raw_upstream(short))
    r = await via.get("/api/short", headers=bearer(make_token()))
    assert r.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await r.read()


async def test_a_service_that_hangs_up_before_answering_is_a_502(
    gateway_factory, raw_upstream, make_token
):
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.close()

    via = await gateway_factory(await raw_upstream(hang_up))
    r = await via.post("/api/x", json={}, headers=bearer(make_token()))
    assert r.status == 502
    assert await r.json() == {"error": "chat service unavailable", "code": "upstream_unavailable"}


async def test_a_service_that_stalls_mid_answer_is_cut_at_the_read_timeout(
    gateway_factory, raw_upstream, make_token
):
    done = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstart")
        await writer.drain()
        await reader.read()  # until the gateway gives up and closes
        done.set()

    via = await gateway_factory(await raw_upstream(stall), upstream_timeout_s=0.2)
    r = await via.get("/api/stall", headers=bearer(make_token()))
    assert r.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await r.read()
    await asyncio.wait_for(done.wait(), TIMEOUT_S)


async def test_a_close_delimited_answer_and_interim_answers(
    gateway_factory, raw_upstream, make_token
):
    async def old_style(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nX-Old: yes\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    via = await gateway_factory(await raw_upstream(old_style))
    r = await via.get("/api/old", headers=bearer(make_token()))
    assert (r.status, r.headers["X-Old"]) == (200, "yes")
    assert await r.read() == b"until the end"


async def test_a_connection_the_service_closed_while_idle_is_not_used(
    gateway_factory, raw_upstream, make_token, monkeypatch
):
    """Not even for a POST: the pool sees the close and opens a new connection."""
    connections = 0
    lost: asyncio.Queue[None] = asyncio.Queue()
    connection_lost = Exchange.connection_lost

    def noticed(self: Exchange, exc: Exception | None) -> None:
        connection_lost(self, exc)
        lost.put_nowait(None)

    monkeypatch.setattr(Exchange, "connection_lost", noticed)

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        head = await read_head(reader)
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if b"Content-Length" in line),
            0,
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # kept alive as far as the gateway knows, then closed

    via = await gateway_factory(await raw_upstream(once))
    headers = bearer(make_token())
    for n in range(3):
        r = await via.post("/api/send", json={"n": n}, headers=headers)
        assert (r.status, await r.read()) == (200, b"ok")
        await asyncio.wait_for(lost.get(), TIMEOUT_S)  # the gateway saw the close
    assert connections == 3


async def test_a_connect_that_never_completes_is_a_502_at_the_connect_timeout(monkeypatch):
    never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def hangs(*args: Any, **kwargs: Any) -> Any:
        return await never

    pool = UpstreamPool(
        "http://192.0.2.1:80", size=1, connect_timeout=0.05, read_timeout=1, pool_wait=1
    )
    monkeypatch.setattr(pool.loop, "create_connection", hangs)
    with pytest.raises(UpstreamError, match="cannot connect"):
        await pool.connect()


async def test_the_pool_closes_its_connections_at_cleanup(gateway_factory, raw_upstream):
    closed = asyncio.Event()

    async def keep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        assert await reader.read() == b""  # the gateway's close
        closed.set()

    via = await gateway_factory(await raw_upstream(keep))
    r = await via.get("/rooms/code/abc-def-ghi")
    assert (r.status, await r.read()) == (200, b"ok")
    await via.close()
    await asyncio.wait_for(closed.wait(), TIMEOUT_S)


async def test_bytes_after_the_answer_make_the_connection_unusable(
    gateway_factory, raw_upstream, make_token
):
    """A service that answers twice (or sends junk after its answer) is never
    believed for the next request: that one goes on a new connection."""
    connections = 0

    async def twice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        n = connections
        while True:
            try:
                await read_head(reader)
            except asyncio.IncompleteReadError:
                return
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n%d!" % n
            writer.write(answer + b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    via = await gateway_factory(await raw_upstream(twice))
    headers = bearer(make_token())
    r = await via.get("/api/one", headers=headers)
    assert (r.status, await r.read()) == (200, b"1!")
    r = await via.get("/api/two", headers=headers)
    assert (r.status, await r.read()) == (200, b"2!")
    assert connections == 2


async def test_a_post_goes_on_a_new_connection_when_nothing_of_it_went_out(
    via, peers, make_token, monkeypatch
):
    """A kept-alive connection found closing as the request is written (its close not
    yet reported): nothing went out, so even a POST is sent again, once."""
    headers = bearer(make_token())
    assert (await via.get("/api/first", headers=headers)).status == 200
    connection = UpstreamPool.connection

    async def closing(self: UpstreamPool) -> Exchange:
        exchange = await connection(self)
        if exchange.reused:
            assert exchange.transport is not None
            exchange.transport.close()  # as if the service's FIN were on its way
        return exchange

    monkeypatch.setattr(UpstreamPool, "connection", closing)
    r = await via.post("/api/once", json={"n": 1}, headers=headers)
    assert r.status == 200
    assert (await r.json())["length"] == len(b'{"n": 1}')
    assert len(peers.ports) == 2  # the GET, and the POST once, on a new connection
    assert peers.ports[0] != peers.ports[1]
