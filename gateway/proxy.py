"""The HTTP relay: /api/... to the chat service, /rooms... to the meeting
service. Bodies flow through in chunks both ways, never decoded. WebSocket
upgrades go to the WebSocket relay (gateway.websocket_proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.observability import count_upstream_error, proxied_as
from gateway.upstream import SESSION_KEY, Upstream, end_to_end, upstream_headers
from gateway.websocket_proxy import forward_websocket
from shared.endpoints import endpoint
from shared.errors import ApiError, client_gone
from shared.metrics import ROUTE_HEADER

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
TIMEOUT_KEY = web.AppKey("upstream_timeout", aiohttp.ClientTimeout)
BODY_LIMIT_KEY = web.AppKey("body_limit", int)
POOL_WAIT_KEY = web.AppKey("upstream_pool_wait_s", float)
# As many as the connector's limit: a request holds one from sending to the last byte relayed.
POOL_SLOTS_KEY = web.AppKey("upstream_pool_slots", asyncio.Semaphore)


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
    async with upstream_slot(request, upstream):
        return await _forward(request, upstream, body)


@contextlib.asynccontextmanager
async def upstream_slot(request: web.Request, upstream: Upstream) -> AsyncIterator[None]:
    """One of the pool's connections for this request, or a 503 once the wait is
    over: a full pool answers in bounded time instead of queueing without end."""
    slots = request.app[POOL_SLOTS_KEY]
    try:
        async with asyncio.timeout(request.app[POOL_WAIT_KEY]):
            await slots.acquire()
    except TimeoutError:
        log.warning("upstream pool exhausted", extra={"upstream": upstream.name})
        raise ApiError(503, f"{upstream.name} busy", headers={"Retry-After": "1"}) from None
    try:
        yield
    finally:
        slots.release()


async def _forward(
    request: web.Request, upstream: Upstream, body: LimitedBody | None
) -> web.StreamResponse:
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
            proxied_as(request, upstream.service, answer.headers.get(ROUTE_HEADER))
            return await _relay(request, answer)
    except aiohttp.ConnectionTimeoutError:
        raise ApiError(502, f"{upstream.name} unavailable") from None
    except TimeoutError:
        raise ApiError(504, f"{upstream.name} timed out") from None
    except (aiohttp.ClientError, BodyTooLarge) as exc:
        if body is not None and body.exceeded:
            raise too_large() from None
        if client_gone(request):
            raise  # the client hung up mid-body: not the upstream's fault
        log.warning("upstream failed", extra={"upstream": upstream.name, "error": repr(exc)})
        raise ApiError(502, f"{upstream.name} unavailable") from None


class FixedLengthResponse(web.StreamResponse):
    """A relayed body of a known length: its headers leave with its first bytes, so a
    small response is one write, not two (aiohttp sends a StreamResponse's headers on
    their own at prepare unless told otherwise). Streams of unknown length keep that,
    so that a client sees their headers before a slow first chunk."""

    _send_headers_immediately = False


async def _relay(request: web.Request, answer: aiohttp.ClientResponse) -> web.StreamResponse:
    kind = FixedLengthResponse if answer.content_length is not None else web.StreamResponse
    response = kind(status=answer.status, reason=answer.reason)
    response.headers.extend(end_to_end(answer.headers))
    response.headers.popall("X-Request-ID", None)
    response.headers.popall(ROUTE_HEADER, None)
    if answer.status == 426:
        # Upgrade is hop-by-hop, but this hop too needs the client to upgrade.
        response.headers["Upgrade"] = answer.headers.get("Upgrade", "websocket")
        response.headers["Connection"] = "Upgrade"
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


def proxy_handler(upstream: Upstream, *, public: bool = False) -> Handler:
    @endpoint(f"Forwarded to the {upstream.name}", public=public, hidden=True)
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await forward(request, upstream)
        except ApiError as exc:
            if exc.status in (502, 504):
                proxied_as(request, upstream.service, None)
                count_upstream_error(request, upstream.service, exc.status)
            raise

    return handler
