"""The WebSocket relay: a client's socket spliced to one opened on the service,
frames passed both ways unchanged, with the close code and reason."""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar
from types import SimpleNamespace

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from gateway.observability import proxied_as
from gateway.upstream import Upstream, upstream_headers
from shared.errors import ApiError, error_response
from shared.metrics import ROUTE_HEADER
from shared.realtime import GOING_AWAY, Ending
from shared.websockets import open_websocket

# A service's refusal of a WebSocket upgrade, caught by `refused_upgrades` before
# aiohttp's ws_connect raises without it, so the client gets the service's body.
_refusal: ContextVar[tuple[int, bytes, str] | None] = ContextVar("upgrade_refusal", default=None)
# The route template the service named in its handshake answer, for metrics.
_route: ContextVar[str | None] = ContextVar("upgrade_route", default=None)
MAX_REFUSAL_BYTES = 64 * 1024


def refused_upgrades() -> aiohttp.TraceConfig:
    async def on_request_end(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        response = params.response
        if "Sec-WebSocket-Key" not in params.headers:
            return
        _route.set(response.headers.get(ROUTE_HEADER))
        if response.status != 101:
            body = await response.content.read(MAX_REFUSAL_BYTES)
            _refusal.set((response.status, body, response.content_type))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    return trace


# Proxied sockets have a client session of their own, with no connection limit:
# each holds its connection for as long as it lives, and must never take one
# the HTTP relay needs.
WS_SESSION_KEY = web.AppKey("upstream_websocket_session", aiohttp.ClientSession)

# RFC 6455 §7.4.1: codes an endpoint may put in a close frame. 1005 and 1006
# (and 0, which aiohttp reports for an empty close) only describe a close locally,
# 1015 likewise, and 1004 and 1016-2999 are reserved or unassigned.
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})
NO_STATUS_RECEIVED = 1005
UPSTREAM_LOST = Ending(WSCloseCode.INTERNAL_ERROR, "upstream connection lost")


def sendable(code: int | None, reason: str) -> Ending:
    """The close a relay may send for one it received: an empty close (code 0,
    None or 1005) is a normal one, anything else illegal on the wire is 1011."""
    if code in (None, 0, NO_STATUS_RECEIVED):
        return Ending(WSCloseCode.OK, "")
    if code in _SENDABLE or 3000 <= code <= 4999:
        return Ending(code, reason)
    return UPSTREAM_LOST


async def forward_websocket(request: web.Request, upstream: Upstream) -> web.StreamResponse:
    session = request.app[WS_SESSION_KEY]
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
        proxied_as(request, upstream.service, _route.get())
        refusal = _refusal.get()
        if refusal is None or refusal[0] != exc.status:
            return error_response(exc.status, "websocket upgrade refused")
        status, body, content_type = refusal
        return web.Response(status=status, body=body, content_type=content_type)
    except (aiohttp.ClientError, TimeoutError):
        raise ApiError(502, f"{upstream.name} unavailable") from None
    proxied_as(request, upstream.service, _route.get())
    try:
        # Registered for shutdown, which closes it with 1001 (and so the upstream's).
        client_ws = await open_websocket(request, protocols=protocols, autoclose=False)
        await _Splice(client_ws, upstream_ws).run()
    finally:
        # Still open only if this handler was cancelled (its client vanished).
        await upstream_ws.close(code=GOING_AWAY.code, message=GOING_AWAY.reason.encode())
    return client_ws


Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse
CLOSE_WAIT_S = 5.0


class _Splice:
    """Two sockets joined. The first close frame either side sends is passed on,
    made legal, and answered with the same code once the other side has it."""

    def __init__(self, client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse):
        self.client = client
        self.upstream = upstream
        self.passed_on: Ending | None = None

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._pump(self.client, self.upstream, lost=GOING_AWAY)),
            asyncio.create_task(self._pump(self.upstream, self.client, lost=UPSTREAM_LOST)),
        ]
        try:
            _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                await asyncio.wait(pending, timeout=CLOSE_WAIT_S)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(
                    asyncio.CancelledError, ConnectionError, aiohttp.ClientError
                ):
                    await task
        reply = self.passed_on or GOING_AWAY
        for ws in (self.client, self.upstream):
            if not ws.closed:
                with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                    await ws.close(code=reply.code, message=reply.reason.encode())

    async def _pump(self, source: Socket, sink: Socket, *, lost: Ending) -> None:
        """Frames from `source` to `sink`, then the close: the one `source` sent,
        or `lost` when it ended without one (its connection dropped, or this
        process closed it at shutdown)."""
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
        if self.passed_on is not None:
            return  # the other side closed first; `run` answers it
        ending = lost
        if message.type == WSMsgType.CLOSE:
            ending = self.passed_on = sendable(message.data, message.extra or "")
        await sink.close(code=ending.code, message=ending.reason.encode())
