"""An edge: a Protocol of its own in front of aiohttp's, serving some requests by
plain function calls and handing everything else to aiohttp.

aiohttp's server side (the request and response objects, the router, the
middlewares, signals) costs more CPU per request than most handlers here; a request
whose route and head are plain needs none of it. So a connection can start here:
requests are parsed by httptools (llhttp), a decider says from the head whether the
edge serves one (shared.edge_head.HeadDecider: the checks every edge makes, then the
edge's routes), and the `Context`'s
`serve` serves it and writes its answer (the gateway's relay, gateway.edge; the
services' routes, shared.service_edge), doing by plain calls what the web layer did
around the handler.

Everything else goes to aiohttp, with the connection: the raw bytes from the start
of that request on are kept until its head is parsed and the decision made (or
the head, unended, passes shared.edge_head.MAX_HEAD: aiohttp's limits judge it); the
hand-off then makes aiohttp's protocol for the connection
(shared.server.Server.handler), gives it the transport and feeds it those bytes.
From then on the connection is aiohttp's, or, with `give_back` (the services'
edges), until aiohttp has answered and nothing of it is left there
(shared.server.RequestHandler.follow): then a new edge takes it. A hand-off happens
only between requests:
requests are answered one at a time and strictly in order, pipelined ones included,
so a request aiohttp is to answer waits for the edge's answers before it.

Keep-alive, the idle and slow-head timeout (aiohttp's `keepalive_timeout`, this
project's HEADER_TIMEOUT_S), a client that hangs up (the request served goes on,
as `handler_cancellation=False` has it) and a graceful shutdown (the server knows
the connection: shared.server.Server.fronts; a request begun, its body still coming
included, is finished and answered with `Connection: close`) behave as they do in
aiohttp's shared.server.RequestHandler.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, cast

import httptools
from aiohttp.tcp_helpers import tcp_keepalive

from shared.edge_head import MAX_HEAD, EdgeRequest, HeadDecider
from shared.server import FrontFactory, Server

# Reading pauses while a request is served and this much waits behind it.
PAUSE_QUEUED = 8
PAUSE_BYTES = 256 * 1024


class _Stop(Exception):
    """Raised in a parser callback: the rest of the connection is aiohttp's."""


class Context(Protocol):
    """What an edge's connections share (one per server): the decision for a head,
    and the coroutine that serves a request the decision took."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def decider(self) -> HeadDecider: ...

    def serve(self, connection: EdgeConnection, request: EdgeRequest) -> Coroutine[Any, Any, None]:
        """Serves `request` and writes its answer (connection.write), then calls
        connection.request_done(keep_alive) last, whatever happened."""

    def hung_up(self, request: EdgeRequest, seconds: float) -> None:
        """The client hung up before `request`'s body was all there."""


class EdgeConnection(asyncio.Protocol):
    def __init__(self, server: Server, context: Context, give_back: bool = False) -> None:
        self.server = server
        self.context = context
        # aiohttp gives the connection back between requests (Server.handler).
        self.give_back = give_back
        self.loop = context.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        # The bytes from the start of the first request not yet taken.
        self.raw = bytearray()
        self.queue: deque[EdgeRequest] = deque()
        self.task: asyncio.Task[None] | None = None
        self.served: EdgeRequest | None = None  # the task's request
        self.current: EdgeRequest | None = None  # its head parsed, its body not all in
        self.current_since = 0.0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.stopped = False  # parsing stopped: a hand-off is due
        self.handed_off = False
        self.closing = False
        self.lost = False
        self.reading_paused = False
        self.drained: asyncio.Future[None] | None = None
        self.peer: str | None = None
        self.scheme = "http"
        self.keepalive_timeout: float = server._kwargs.get("keepalive_timeout", 3630)
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.idle_waiter: asyncio.Future[None] | None = None
        self.written = 0  # bytes of answers, counted as `serve` writes them

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        self.server.fronts.add(self)
        if self.server._kwargs.get("tcp_keepalive", True):
            tcp_keepalive(transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, list | tuple):
            self.peer = str(peer[0])
        if transport.get_extra_info("sslcontext"):
            self.scheme = "https"
        if self.keepalive_timeout > 0:
            # From the start, as aiohttp does: a client that sends no head is closed.
            self.deadline = self.loop.time() + self.keepalive_timeout
            self.timer = self.loop.call_at(self.deadline, self._keepalive)

    def data_received(self, data: bytes) -> None:
        if self.lost or (self.closing and self.current is None):
            # Closing, the rest of a body begun before is all that is still read.
            return
        self.raw += data
        if not self.stopped:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                # Refused by the decision (_Stop), or not parsed: aiohttp says what.
                self.stopped = True
                self.current = None
            if self.current is None and len(self.raw) > MAX_HEAD:
                # A head longer than the edge takes, not ended yet: aiohttp's limits
                # refuse it (414, 431) where httptools would buffer on.
                self.stopped = True
        if self.task is None:
            self._next()
        if (
            self.task is not None
            and not self.reading_paused
            and (len(self.queue) >= PAUSE_QUEUED or len(self.raw) > PAUSE_BYTES)
        ):
            self.reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.current is not None:  # its body never came whole
            self.context.hung_up(self.current, self.loop.time() - self.current_since)
            self.current = None
        self.server.fronts.discard(self)
        self.queue.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._wake_writer()
        if self.task is None:
            self._wake_idle()
        if self.task is not None and self.server.handler_cancellation:
            self.task.cancel()

    def pause_writing(self) -> None:
        if self.drained is None:
            self.drained = self.loop.create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    # httptools' callbacks

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        request = self.context.decider.decide(
            parser.get_method(),
            self.url,
            self.headers,
            self.raw,
            version=parser.get_http_version(),
            keep_alive=parser.should_keep_alive(),
            peer=self.peer,
            scheme=self.scheme,
        )
        if request is None or self.closing:
            raise _Stop()
        self.current = request
        self.current_since = self.loop.time()

    def on_message_complete(self) -> None:
        request = self.current
        if request is None:
            raise _Stop()
        self.current = None
        end = request.head_length + request.body_length
        if request.body_length:
            request.body = bytes(self.raw[request.head_length : end])
        del self.raw[:end]
        self.queue.append(request)

    # Requests, one at a time

    def _next(self) -> None:
        if self.handed_off or self.lost:
            return
        if self.queue:
            self.served = self.queue.popleft()
            self.task = self.loop.create_task(self.context.serve(self, self.served))
        elif self.closing:
            if self.current is None:  # a body still coming is waited for
                self._close()
        elif self.stopped:
            self._hand_off()

    def request_done(self, keep_alive: bool) -> None:
        """The request's answer is out (called last by the context's `serve`)."""
        self.task = self.served = None
        self._wake_idle()
        if self.lost:
            return
        if not keep_alive or self.closing:
            self._close()
            return
        if self.keepalive_timeout > 0:
            self.deadline = self.loop.time() + self.keepalive_timeout
            if self.timer is None:
                self.timer = self.loop.call_at(self.deadline, self._keepalive)
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        self._next()

    def _hand_off(self) -> None:
        transport = self.transport
        assert transport is not None
        self.handed_off = True
        self.server.fronts.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if transport.is_closing():
            return
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        handler = self.server.handler(give_back=self.give_back)
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self.drained is not None:  # the transport's buffer is still over its mark
            handler.pause_writing()
        if self.raw:
            data, self.raw = bytes(self.raw), bytearray()
            handler.data_received(data)

    def _keepalive(self) -> None:
        self.timer = None
        if self.handed_off or self.lost:
            return
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._keepalive)
        elif self.task is None and self.current is None and not self.queue:
            self._close()  # waiting for a request head, as aiohttp closes it

    # Writing

    def gone(self) -> bool:
        """The client hung up (shared.errors.client_gone, for this connection)."""
        return self.lost or self.transport is None or self.transport.is_closing()

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if not self.gone():
            self.transport.write(data)  # type: ignore[union-attr]

    async def drain(self) -> None:
        while self.drained is not None and not self.lost:
            await self.drained

    def _wake_idle(self) -> None:
        """No request is served now (shutdown waits for that)."""
        if self.idle_waiter is not None and not self.idle_waiter.done():
            self.idle_waiter.set_result(None)

    def _wake_writer(self) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def cut(self) -> None:
        """Too late for an error status: the client sees a short answer."""
        self._close()

    def _close(self) -> None:
        self.closing = True
        self.server.fronts.discard(self)
        if self.transport is not None and not self.lost:
            self.transport.close()

    # The server's shutdown (shared.server.Front)

    def close(self) -> None:
        """No more requests: an idle connection closes now. A request begun (being
        served, or its head in and its body still coming) is finished first: its
        body read to the end, served, and answered with `Connection: close`; a
        request behind it is not taken (as shared.server.RequestHandler.close)."""
        self.closing = True
        if self.served is not None:
            self.served.keep_alive = False
            self.current = None  # pipelined behind the one served: not begun
        elif self.current is not None:
            self.current.keep_alive = False
        else:
            self._close()

    async def shutdown(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """As shared.server.RequestHandler's: a request begun gets `timeout` to come
        whole and be answered; if it is still served then, it is cancelled and gets
        as long again; then the connection is closed (a body still coming is cut)."""
        self.closing = True
        for cancel in (False, True):
            task = self.task
            if task is None and self.current is None:
                break
            if cancel:
                if task is None:
                    break
                task.cancel()
            waiter = self.idle_waiter = self.loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError:
                pass
            finally:
                self.idle_waiter = None
        self._close()


def edge_front(make_context: Callable[[Server], Context], give_back: bool = False) -> FrontFactory:
    """An app's front (shared.server.FRONT_KEY): an EdgeConnection a connection, with
    the context `make_context` makes for the server, at its first connection (once
    the app has started)."""
    contexts: dict[Server, Context] = {}

    def make(server: Server) -> asyncio.BaseProtocol:
        context = contexts.get(server)
        if context is None:
            context = contexts[server] = make_context(server)
        return EdgeConnection(server, context, give_back)

    return make
