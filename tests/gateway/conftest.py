"""The gateway in front of an echo upstream that shows what it received."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from shared.server import FRONT_KEY
from tests.conftest import gateway_settings_for


class Echo:
    """Stands in for a service: records each request, and can stall or stream."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.release = asyncio.Event()
        self.stalling = asyncio.Event()
        # The close code each upstream socket got, as it arrived.
        self.closes: asyncio.Queue[int | None] = asyncio.Queue()
        self.huge_sent = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/api/ws", self.websocket)
        app.router.add_get("/api/ws-drop", self.websocket_drop)
        app.router.add_get("/api/stall", self.stall)
        app.router.add_get("/api/big", self.big)
        app.router.add_get("/api/huge", self.huge)
        app.router.add_get("/api/gzip", self.gzip)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        return app

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = {
            "method": request.method,
            "path_qs": request.path_qs,
            "headers": dict(request.headers),
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        self.requests.append(seen)
        response = web.json_response(seen, status=int(request.query.get("status", "200")))
        response.headers["Connection"] = "X-Upstream-Hop"
        response.headers["X-Upstream-Hop"] = "private"
        response.headers["X-Upstream-End"] = "public"
        return response

    async def stall(self, request: web.Request) -> web.Response:
        self.stalling.set()
        await self.release.wait()
        return web.json_response({})

    async def big(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(48):
            await response.write(bytes([i % 256]) * 65536)
        await response.write_eof()
        return response

    async def huge(self, request: web.Request) -> web.StreamResponse:
        """64 MiB of known length, written as fast as the client takes it."""
        block = bytes(range(256)) * 4096  # 1 MiB
        response = web.StreamResponse(headers={"Content-Length": str(64 * len(block))})
        await response.prepare(request)
        self.huge_sent = 0
        for _ in range(64):
            await response.write(block)
            self.huge_sent += len(block)
        await response.write_eof()
        return response

    async def gzip(self, request: web.Request) -> web.Response:
        import gzip

        return web.Response(
            body=gzip.compress(b"hello " * 1000), headers={"Content-Encoding": "gzip"}
        )

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str("echo:" + message.data)
        self.closes.put_nowait(ws.close_code)
        return ws

    async def websocket_drop(self, request: web.Request) -> web.WebSocketResponse:
        """A service that dies: the connection drops with no close frame."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        assert request.transport is not None
        request.transport.abort()
        return ws


@pytest.fixture
async def echo(aiohttp_server: Any) -> Any:
    echo = Echo()
    echo.server = await aiohttp_server(echo.app())
    yield echo
    echo.release.set()


@pytest.fixture
def gateway_factory(aiohttp_client: Any, database_url: str, signing_key: Any) -> Any:
    async def make(upstream_url: str, *, edge: bool = True, **overrides: Any) -> Any:
        """A gateway in front of `upstream_url`; without `edge`, aiohttp alone serves it."""
        settings = gateway_settings_for(
            database_url, signing_key, chat_url=upstream_url, meeting_url=upstream_url, **overrides
        )
        app = create_app(settings)
        if not edge:
            del app[FRONT_KEY]
        return await aiohttp_client(app)

    return make


@pytest.fixture
def gateway_pair(gateway_factory: Any) -> Any:
    async def make(upstream_url: str, **overrides: Any) -> tuple[Any, Any]:
        """Two gateways to `upstream_url`: with the edge, and aiohttp alone."""
        with_edge = await gateway_factory(upstream_url, **overrides)
        return with_edge, await gateway_factory(upstream_url, edge=False, **overrides)

    return make


@pytest.fixture
async def gateway(gateway_factory: Any, echo: Echo) -> Any:
    return await gateway_factory(str(echo.server.make_url("")))
