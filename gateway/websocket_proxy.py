"""The WebSocket relay: a client's socket spliced to one opened on the service,
frames passed both ways unchanged, with the close code and reason."""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar
from types import SimpleNamespace

import aiohttp
from aiohttp import WSMsgType, web

from gateway.upstream import SESSION_KEY, Upstream, upstream_headers
from shared.errors import ApiError, error_response

# A service's refusal of a WebSocket upgrade, caught by `refused_upgrades` before
# aiohttp's ws_connect raises without it, so the client gets the service's body.
_refusal: ContextVar[tuple[int, bytes, str] | None] = ContextVar("upgrade_refusal", default=None)
MAX_REFUSAL_BYTES = 64 * 1024


def refused_upgrades() -> aiohttp.TraceConfig:
    async def on_request_end(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        response = params.response
        if "Sec-WebSocket-Key" in params.headers and response.status != 101:
            body = await response.content.read(MAX_REFUSAL_BYTES)
            _refusal.set((response.status, body, response.content_type))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    return trace


async def forward_websocket(request: web.Request, upstream: Upstream) -> web.StreamResponse:
    session = request.app[SESSION_KEY]
    protocols = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    headers = upstream_headers(request, websocket=True)
    headers.popall("Sec-WebSocket-Protocol", None)
    try:
        upstream_ws = await session.ws_connect(
            upstream.url + request.rel_url.raw_path_qs,
            headers=headers,
            protocols=protocols,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5),
            heartbeat=30,
            autoclose=False,
            autoping=True,
        )
    except aiohttp.WSServerHandshakeError as exc:
        refusal = _refusal.get()
        if refusal is None or refusal[0] != exc.status:
            return error_response(exc.status, "websocket upgrade refused")
        status, body, content_type = refusal
        return web.Response(status=status, body=body, content_type=content_type)
    except (aiohttp.ClientError, TimeoutError):
        raise ApiError(502, f"{upstream.name} unavailable") from None
    client_ws = web.WebSocketResponse(protocols=protocols, heartbeat=30, autoclose=False)
    try:
        await client_ws.prepare(request)
        await _splice(client_ws, upstream_ws)
    finally:
        await upstream_ws.close()
        await client_ws.close()
    return client_ws


async def _splice(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    async def pump(
        source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    ) -> None:
        # receive(), not `async for`: iteration stops before the CLOSE frame,
        # whose code and reason the other side should get unchanged.
        while True:
            message = await source.receive()
            if message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            else:
                break
        if message.type == WSMsgType.CLOSE:
            await sink.close(code=message.data, message=(message.extra or "").encode())
        else:
            await sink.close(code=source.close_code or aiohttp.WSCloseCode.OK)

    tasks = [
        asyncio.create_task(pump(client, upstream)),
        asyncio.create_task(pump(upstream, client)),
    ]
    _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, aiohttp.ClientError):
            await task
