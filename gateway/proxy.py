"""The HTTP relay: /api/... to the chat service, /rooms... to the meeting
service, through each one's pool of keep-alive connections
(gateway.upstream_client). A body of a declared length (within the limit) goes
up with the request head in one write; a chunked one streams through, counted
against the limit. The answer comes back as it arrives: one of a known length
that is all there leaves with its headers in one write. Bodies are never
decoded. WebSocket upgrades go to the WebSocket relay (gateway.websocket_proxy)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.observability import count_upstream_error, proxied_as
from gateway.upstream import Upstream, answer_headers, request_head
from gateway.upstream_client import Busy, Exchange, ReadTimeout, UpstreamError, UpstreamPool
from gateway.websocket_proxy import forward_websocket
from shared.endpoints import endpoint
from shared.errors import ApiError, client_gone
from shared.logs import LOGGED_UPSTREAM_KEY

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
BODY_LIMIT_KEY = web.AppKey("body_limit", int)
# Each service's pool of connections, by its metrics name ("chat", "meeting").
POOLS_KEY = web.AppKey("upstream_pools", dict[str, UpstreamPool])
# aiohttp's list: a request with one of these methods (and a body the relay still
# holds) may go out again when a kept-alive connection turns out closed.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Methods whose requests have a body even when it is empty.
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


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
    declared = request.content_length
    body: bytes | LimitedBody | None = None
    if declared is not None:
        if declared > limit:
            raise too_large()
        # Read before a connection is taken: a slow client holds none meanwhile.
        body = await request.read()
    elif request.body_exists:
        body = LimitedBody(request.content, limit)
    elif request.method in WITH_BODY:
        body = b""
    pool = request.app[POOLS_KEY][upstream.service]
    head = request_head(
        request,
        pool.authority,
        len(body) if isinstance(body, bytes) else None,
        chunked=isinstance(body, LimitedBody),
    )
    await take_place(pool, upstream)
    try:
        exchange = await send_request(
            upstream, pool, request.method, head, body, lambda: client_gone(request)
        )
        try:
            return await _relay(request, upstream, exchange)
        finally:
            exchange.finish()
    finally:
        pool.release()


async def take_place(pool: UpstreamPool, upstream: Upstream) -> None:
    """One of the pool's places for a request in flight (`pool.release()` it after);
    503 with Retry-After when none came free in time."""
    try:
        if not pool.take():
            await pool.wait()
    except Busy:
        log.warning("upstream pool exhausted", extra={"upstream": upstream.name})
        raise ApiError(503, f"{upstream.name} busy", headers={"Retry-After": "1"}) from None


async def send_request(
    upstream: Upstream,
    pool: UpstreamPool,
    method: str,
    head: bytes,
    body: bytes | LimitedBody | None,
    gone: Callable[[], bool],
) -> Exchange:
    """The request sent, and its answer's head received (`finish()` the exchange
    after); 502 or 504 when the service failed, unless the client is `gone`. A
    kept-alive connection the service closed meanwhile fails before any answer: the
    request goes once more, on a new connection, when sending it twice cannot do
    harm. Both the aiohttp route and the edge (gateway.edge) send here."""
    data = body.chunks() if isinstance(body, LimitedBody) else body
    retry = method in IDEMPOTENT and not isinstance(body, LimitedBody)
    head_only = method == "HEAD"
    try:
        exchange = await pool.connection()
        try:
            await exchange.send(head, data, head_only=head_only)
        except UpstreamError as exc:
            exchange.finish()
            # Once more only if the service cannot have acted on it: nothing of it
            # went out, or it may be repeated (idempotent, its body still at hand).
            stale = exchange.reused and not exchange.received and not isinstance(exc, ReadTimeout)
            if not stale or (exchange.sent and not retry):
                raise
            exchange = await pool.connect()
            try:
                await exchange.send(head, data, head_only=head_only)
            except BaseException:
                exchange.finish()
                raise
        except BaseException:
            exchange.finish()
            raise
    except ReadTimeout:
        raise ApiError(504, f"{upstream.name} timed out") from None
    except (UpstreamError, aiohttp.ClientError, BodyTooLarge) as exc:
        if isinstance(body, LimitedBody) and body.exceeded:
            raise too_large() from None
        if gone():
            raise  # the client hung up mid-body: not the upstream's fault
        log.warning("upstream failed", extra={"upstream": upstream.name, "error": repr(exc)})
        raise ApiError(502, f"{upstream.name} unavailable") from None
    return exchange


class FixedLengthResponse(web.StreamResponse):
    """A relayed body of a known length: its headers leave with its first bytes, so a
    small response is one write, not two (aiohttp sends a StreamResponse's headers on
    their own at prepare unless told otherwise). Streams of unknown length keep that,
    so that a client sees their headers before a slow first chunk."""

    _send_headers_immediately = False


async def _relay(
    request: web.Request, upstream: Upstream, exchange: Exchange
) -> web.StreamResponse:
    headers, route, fixed = answer_headers(exchange.headers)
    proxied_as(request, upstream.service, route)
    # The service logged this request (same X-Request-ID, its user and the client's
    # address); the gateway's own line would say it again.
    request[LOGGED_UPSTREAM_KEY] = upstream.service
    if exchange.complete and not fixed and _has_body(request, exchange):
        # All there already (it came chunked): the client gets it with its length.
        headers.append(("Content-Length", str(exchange.buffered)))
        fixed = True
    kind = FixedLengthResponse if fixed else web.StreamResponse
    response = kind(
        status=exchange.status, reason=exchange.reason.decode("latin-1"), headers=headers
    )
    if exchange.status == 426:
        # Upgrade is hop-by-hop, but this hop too needs the client to upgrade.
        for name, value in exchange.headers:
            if name.lower() == b"upgrade":
                response.headers["Upgrade"] = value.decode("latin-1")
                break
        else:
            response.headers["Upgrade"] = "websocket"
        response.headers["Connection"] = "Upgrade"
    await response.prepare(request)
    try:
        if exchange.complete:
            await response.write_eof(exchange.take())
            return response
        while chunk := await exchange.next_chunk():
            await response.write(chunk)
    except (UpstreamError, aiohttp.ClientError, ConnectionError) as exc:
        # Too late for an error status: cut the connection so the client sees a short body.
        log.warning("upstream failed mid-response", extra={"error": repr(exc)})
        response.force_close()
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def _has_body(request: web.Request, exchange: Exchange) -> bool:
    return request.method != "HEAD" and exchange.status not in (204, 304)


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
