"""The HTTP relay's client: keep-alive HTTP/1.1 connections to one service, on an
asyncio Protocol, the answers parsed by httptools (llhttp, the parser Node.js uses).

aiohttp's ClientSession does much the relay has no use for (cookies, redirects,
decompression, a URL object, trace signals, a request and a response object, a
StreamReader) and cost the gateway a quarter of its CPU. Here a request is a head
the caller wrote as bytes and its body, sent in one write when its length is
known; the answer is its status, its headers as bytes, and its body as it arrives.

A pool (`UpstreamPool`) holds up to `size` requests in flight, each on a
connection of its own taken from the idle ones (last used first) or opened anew,
and puts a connection back when its answer was read to the end and it may be
kept alive. One whose answer was not read through, or that failed, is closed.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterable
from typing import cast

import httptools
import yarl


class UpstreamError(Exception):
    """The service could not be used: refused, timed out connecting, or hung up."""


class ReadTimeout(UpstreamError):
    """Nothing came from the service for longer than the read timeout."""


class Busy(Exception):
    """Every connection was in use for as long as a request may wait."""


class Exchange(asyncio.Protocol):
    """One connection to the service, and the request it is serving."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.active = False
        self.sent = False
        self.reused = False
        self.keep_alive = False
        self.head_only = False
        # The answer so far.
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.has_head = False
        self.complete = False
        self.received = False
        self.error: BaseException | None = None
        self._interim = False
        self._waiter: asyncio.Future[None] | None = None
        self._progress = 0.0
        self._paused = False
        self._write_ready: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active or self.complete:
            # Bytes nobody asked for (idle, or after the answer): it cannot be trusted.
            self._fail(UpstreamError("unsolicited bytes from the service"))
            return
        self._progress = self.loop.time()
        self.received = True
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # httptools' parse errors, and a 101 (see on_headers_complete)
            self._fail(UpstreamError(f"unusable answer: {exc!r}"))
            return
        if self.head_only and self.has_head and not self.complete:
            # An answer to HEAD has no body, whatever its Content-Length says; llhttp
            # cannot be told, so this connection's parser starts over for the next one.
            self.parser = httptools.HttpResponseParser(self)
            self.on_message_complete()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.has_head and not self.complete and exc is None and self._close_delimited():
            self.on_message_complete()
        elif not self.complete:
            self._fail(UpstreamError("connection closed by the service"))
        if self._write_ready is not None and not self._write_ready.done():
            self._write_ready.set_result(None)

    def pause_writing(self) -> None:
        self._write_ready = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._write_ready is not None and not self._write_ready.done():
            self._write_ready.set_result(None)
        self._write_ready = None

    # httptools' callbacks

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request
            raise UpstreamError("unsolicited answer from the service")

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status == 101:
            raise UpstreamError("the service switched protocols on an HTTP request")
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the final one follows.
            self._interim = True
            self.reason, self.headers = b"", []
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        self.has_head = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > self.pool.buffer_limit and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self._wake()

    # The request

    async def send(
        self, head: bytes, body: bytes | AsyncIterable[bytes] | None, *, head_only: bool = False
    ) -> None:
        """Writes the request and waits for the answer's head (status and headers).
        `head_only`: the request is a HEAD, whose answer has no body."""
        self.active = True
        self.head_only = head_only
        self._progress = self.loop.time()
        self.pool.watch()
        if body is None:
            self._write(head)
        elif isinstance(body, bytes):
            self._write(head + body)
        else:
            self._write(head)
            await self._send_chunked(body)
        while not self.has_head:
            await self._wait()

    def usable(self) -> bool:
        transport = self.transport
        return (
            not self.lost
            and self.error is None
            and transport is not None
            and not transport.is_closing()
        )

    def _write(self, data: bytes) -> None:
        """To the service; a connection closed meanwhile (its close not yet
        reported) fails as one the service closed, and `sent` says whether any
        of the request went out."""
        if not self.usable():
            raise self.error or UpstreamError("connection closed by the service")
        assert self.transport is not None
        self.transport.write(data)
        self.sent = True

    async def _send_chunked(self, body: AsyncIterable[bytes]) -> None:
        async for chunk in body:
            if chunk:
                self._write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                self._progress = self.loop.time()
                if self._write_ready is not None:
                    await self._write_ready
        self._write(b"0\r\n\r\n")

    def take(self) -> bytes:
        """The body that arrived and was not taken yet."""
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self.buffered = 0
        if self._paused and self.usable():
            assert self.transport is not None
            self._paused = False
            self._progress = self.loop.time()  # the read timeout counts from here
            self.transport.resume_reading()
        return data

    async def next_chunk(self) -> bytes:
        """The next part of the body; b"" once it is all there."""
        while not self.chunks:
            if self.complete:
                return b""
            await self._wait()
        return self.take()

    def finish(self) -> None:
        """The request is over: the connection goes back to the pool if its answer
        was read to the end and it may be kept alive; otherwise it is closed."""
        if (
            self.complete
            and self.keep_alive
            and not self.chunks
            and not self.lost
            and self.error is None
        ):
            self._reset()
            self.pool.put_back(self)
        else:
            self.close()
            self.pool.forget(self)

    def close(self) -> None:
        """Closes the connection; one whose answer was not read through is cut."""
        if self.transport is not None and not self.lost:
            if self.active and not self.complete:
                self.transport.abort()
            else:
                self.transport.close()
        self.lost = True
        self.active = False

    # Internals

    def _close_delimited(self) -> bool:
        if self.head_only or self.status in (204, 304):
            return False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True

    def _reset(self) -> None:
        self.reused = True
        self.active = False
        self.head_only = self.has_head = self.complete = self.received = self.sent = False
        self.keep_alive = False
        self.status, self.reason, self.headers = 0, b"", []

    async def _wait(self) -> None:
        """Until the protocol has news; the caller looks at what it waits for first,
        so that a failure after it arrived (junk after the answer) does not count."""
        if self.error is not None:
            raise self.error
        waiter = self._waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        if self.transport is not None and not self.lost:
            self.transport.abort()
        self._wake()

    def overdue(self, now: float) -> bool:
        """Waiting on the service, which sent nothing (and was sent nothing) for
        longer than the read timeout. Not while reading is paused: then the
        client is slow, not the service."""
        return (
            self.active
            and not self.complete
            and not self._paused
            and now - self._progress >= self.pool.read_timeout
        )

    def timed_out(self) -> None:
        self._fail(ReadTimeout("the service did not answer in time"))


class UpstreamPool:
    """Keep-alive connections to one service; at most `size` requests at a time."""

    def __init__(
        self,
        url: str,
        *,
        size: int,
        connect_timeout: float,
        read_timeout: float,
        pool_wait: float,
        buffer_limit: int = 256 * 1024,
    ) -> None:
        parsed = yarl.URL(url)
        if parsed.scheme not in ("http", "https") or parsed.raw_host is None:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host: str = parsed.raw_host
        self.port: int = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parsed.scheme == "https" else None
        )
        # The Host header the service gets, as it is named in the URL.
        self.authority = parsed.raw_authority.encode("idna")
        self.size = size
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_wait = pool_wait
        self.buffer_limit = buffer_limit
        self.loop = asyncio.get_running_loop()
        self._free = size
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._idle: list[Exchange] = []
        self._busy: set[Exchange] = set()
        self._watch: asyncio.TimerHandle | None = None
        self.closed = False

    def take(self) -> bool:
        """A place among the `size` requests in flight if one is free (no await)."""
        if self._free > 0:
            self._free -= 1
            return True
        return False

    async def wait(self) -> None:
        """A place among the `size` requests in flight, once one is released; Busy
        when none was within the wait."""
        place = self.loop.create_future()
        self._waiting.append(place)
        try:
            async with asyncio.timeout(self.pool_wait):
                await place
        except BaseException as exc:
            if place.done() and not place.cancelled():
                self.release()  # handed over just as the wait ended: passed on
            else:
                place.cancel()
            if isinstance(exc, TimeoutError):
                raise Busy() from None
            raise

    def release(self) -> None:
        """The place goes to the longest waiting request, if any, else is free."""
        while self._waiting:
            place = self._waiting.popleft()
            if not place.done():
                place.set_result(None)
                return
        self._free += 1

    def watch(self) -> None:
        """Read timeouts: one timer for the pool rather than one per request. It
        looks every tenth of the timeout while requests are in flight, so a stalled
        request fails between 1 and 1.1 read timeouts after the service's last byte."""
        if self._watch is None:
            self._watch = self.loop.call_later(self.read_timeout / 10, self._look)

    def _look(self) -> None:
        self._watch = None
        now = self.loop.time()
        for exchange in [e for e in self._busy if e.overdue(now)]:
            exchange.timed_out()
        if self._busy:
            self.watch()

    async def connection(self) -> Exchange:
        """An idle connection (the most recently used), or a new one."""
        idle = self._idle
        while idle:
            exchange = idle.pop()
            if exchange.usable():
                self._busy.add(exchange)
                return exchange
        return await self.connect()

    async def connect(self) -> Exchange:
        if self.closed:
            raise UpstreamError("the gateway is shutting down")
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, exchange = await self.loop.create_connection(
                    lambda: Exchange(self),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect: {exc!r}") from None
        self._busy.add(exchange)
        return exchange

    def put_back(self, exchange: Exchange) -> None:
        self._busy.discard(exchange)
        if self.closed:
            exchange.close()
        else:
            self._idle.append(exchange)

    def forget(self, exchange: Exchange) -> None:
        self._busy.discard(exchange)

    async def close(self) -> None:
        """Closes the idle connections, and those in use as their requests end."""
        self.closed = True
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for exchange in (*self._idle, *self._busy):
            exchange.close()
        self._idle.clear()
        await asyncio.sleep(0)  # the transports' close callbacks run
