"""The streaming reverse proxy: /api/... to the chat service, /rooms... to the
meeting service. Bodies flow through in chunks both ways, never decoded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict, CIMultiDictProxy

from shared.endpoints import endpoint
from shared.errors import ApiError, error_response
from shared.request_id import request_id_of

log = logging.getLogger(__name__)

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the gateway alone: a client sending them is not believed.
IDENTITY_HEADER_PREFIXES = (
    "x-user",
    "x-auth",
    "x-forwarded-",
    "x-remote-",
    "x-real-ip",
    "x-client-ip",
)
IDENTITY_HEADERS = frozenset({"forwarded", "remote-user", "x-request-id", "host"})
WEBSOCKET_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-accept",
    }
)
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Upstream:
    name: str
    url: str


SESSION_KEY = web.AppKey("upstream_session", aiohttp.ClientSession)
TIMEOUT_KEY = web.AppKey("upstream_timeout", aiohttp.ClientTimeout)
BODY_LIMIT_KEY = web.AppKey("body_limit", int)


def _connection_tokens(headers: CIMultiDictProxy[str]) -> set[str]:
    return {
        token.strip().lower()
        for value in headers.getall("Connection", [])
        for token in value.split(",")
    }


def _end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    drop = HOP_BY_HOP | _connection_tokens(headers)
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


def upstream_headers(request: web.Request, *, websocket: bool = False) -> CIMultiDict[str]:
    headers = _end_to_end(request.headers)
    for name in list(headers):
        lowered = name.lower()
        if (
            lowered in IDENTITY_HEADERS
            or lowered.startswith(IDENTITY_HEADER_PREFIXES)
            or (websocket and lowered in WEBSOCKET_HANDSHAKE)
        ):
            del headers[name]
    headers["X-Forwarded-For"] = request.remote or "unknown"
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.host
    headers["X-Request-ID"] = request_id_of(request)
    return headers


class BodyTooLarge(Exception):
    pass


class LimitedBody:
    """The request body as it arrives, refused once it passes the limit."""

    def __init__(self, content: aiohttp.StreamReader, limit: int) -> None:
        self.content = content
        self.limit = limit
        self.exceeded = False

    async def chunks(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.content.iter_chunked(CHUNK):
            seen += len(chunk)
            if seen > self.limit:
                self.exceeded = True
                raise BodyTooLarge()
            yield chunk


def too_large() -> ApiError:
    return ApiError(413, "request body too large")


async def forward(request: web.Request, upstream: Upstream) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await forward_websocket(request, upstream)
    limit = request.app[BODY_LIMIT_KEY]
    if request.content_length is not None and request.content_length > limit:
        raise too_large()
    body = LimitedBody(request.content, limit) if request.body_exists else None
    session = request.app[SESSION_KEY]
    try:
        async with session.request(
            request.method,
            upstream.url + request.rel_url.raw_path_qs,
            headers=upstream_headers(request),
            data=body.chunks() if body else None,
            allow_redirects=False,
            timeout=request.app[TIMEOUT_KEY],
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        ) as answer:
            return await _relay(request, answer)
    except aiohttp.ConnectionTimeoutError:
        raise ApiError(502, f"{upstream.name} unavailable") from None
    except TimeoutError:
        raise ApiError(504, f"{upstream.name} timed out") from None
    except (aiohttp.ClientError, BodyTooLarge) as exc:
        if body is not None and body.exceeded:
            raise too_large() from None
        log.warning("upstream failed", extra={"upstream": upstream.name, "error": repr(exc)})
        raise ApiError(502, f"{upstream.name} unavailable") from None


async def _relay(request: web.Request, answer: aiohttp.ClientResponse) -> web.StreamResponse:
    response = web.StreamResponse(status=answer.status, reason=answer.reason)
    response.headers.extend(_end_to_end(answer.headers))
    response.headers.popall("X-Request-ID", None)
    await response.prepare(request)
    try:
        async for chunk in answer.content.iter_any():
            await response.write(chunk)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Too late for an error status: cut the connection so the client sees a short body.
        log.warning("upstream failed mid-response", extra={"error": repr(exc)})
        response.force_close()
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


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


def proxy_handler(upstream: Upstream, *, public: bool = False) -> Handler:
    @endpoint(f"Forwarded to the {upstream.name}", public=public, hidden=True)
    async def handler(request: web.Request) -> web.StreamResponse:
        return await forward(request, upstream)

    return handler
