"""How every process serves HTTP: aiohttp's server, with JSON for what its parser refuses.

aiohttp parses a request line and headers before any middleware runs, and answers
what it cannot parse (headers over the limit, too many headers, an unknown method)
itself, in plain text, logging the error with a traceback that quotes the request.
`RequestHandler` answers those in the API's JSON with a request id instead, and logs
one line without the request's bytes. At a graceful shutdown it finishes a request
begun whose body is still coming, where aiohttp would stop reading it. The processes
(shared.runner) and the test servers (tests/conftest.py) both serve through `AppRunner`.

An app may put a protocol of its own in front of aiohttp's (`FRONT_KEY`: the
gateway's edge, gateway.edge). The server then makes that front for each
connection; the front serves what it can itself and hands the connection to
aiohttp (`Server.handler()`, then the transport's `set_protocol`) for the rest.
The server knows the fronts it made (`Server.fronts`) as it knows aiohttp's
connections, so a shutdown closes and waits for both.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import httptools
from aiohttp import StreamReader, web, web_protocol, web_server
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong

from shared.errors import error_response
from shared.releases import tested_release
from shared.request_id import HEADER as REQUEST_ID_HEADER
from shared.request_id import REQUEST_ID_KEY

log = logging.getLogger(__name__)

# Per process, whatever runs the app: a client that hangs up does not cancel its
# handler, so a request that reached the database finishes as it would have.
# aiohttp's limits on the request target (the whole request line in its pure-Python
# parser) and on a header field. They differ so that its LineTooLong, which names
# the limit passed and not the line, tells an over-long URI (414) from an over-long
# header field (431).
MAX_REQUEST_LINE = 8192
MAX_FIELD = 8190
SERVER_OPTIONS: dict[str, Any] = {
    "handler_cancellation": False,
    "max_line_size": MAX_REQUEST_LINE,
    "max_field_size": MAX_FIELD,
}

REFUSALS = {
    400: "bad request",
    414: "request URI too long",
    431: "request header fields too large",
    501: "method not implemented",
}


def _refused_status(exc: HttpProcessingError, max_line_size: int, max_field_size: int) -> int:
    if isinstance(exc, LineTooLong):
        # RFC 9110 §15.5.15: a target longer than the server will read is 414.
        limit = exc.args[1]
        return 414 if limit == max_line_size and limit != max_field_size else 431
    if exc.message == "Too many headers received":
        return 431
    if isinstance(exc, BadHttpMethod) and "HTTPS" not in exc.message:
        # RFC 9110 §9.1: a method the server does not recognise is 501.
        return 501
    return 400


# The aiohttp releases whose RequestHandler internals the give-back reads (its
# waiter, queued messages, flags: RequestHandler._give_back) were read and tested
# with (tests/meeting_service/test_edge_give_back.py). On another release a
# connection handed to aiohttp stays aiohttp's: slower, never wrong.
GIVE_BACK_AIOHTTP = ((3, 14),)


def give_back_supported(version: str = aiohttp.__version__) -> bool:
    """Whether `version` is an aiohttp release the give-back was written for."""
    return tested_release(version, GIVE_BACK_AIOHTTP)


class _Boundaries:
    """Where the requests a connection sent end, as llhttp reads them (httptools;
    aiohttp's own parser is llhttp too): whether a request is partly in."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.partial = False

    def feed(self, data: bytes) -> bool:
        """False from the first bytes it cannot follow (not HTTP, an upgrade)."""
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            return False
        return True

    def on_message_begin(self) -> None:
        self.partial = True

    def on_message_complete(self) -> None:
        self.partial = False


class RequestHandler(web_protocol.RequestHandler):
    # The body of the request begun before the server's shutdown, still coming.
    _finishing: StreamReader | None = None
    # On a connection a front handed over and takes back between requests
    # (Server.handler(give_back=True)): where its requests end.
    _boundaries: _Boundaries | None = None

    def follow(self) -> None:
        """Give the connection back to the server's front once nothing of it is left
        here: its requests answered, none partly in, no upgrade, not closing."""
        self._boundaries = _Boundaries()

    async def _handle_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._handle_request(*args, **kwargs)
        finally:
            if self._boundaries is not None:
                # Once start() has taken the next request, or waits for one.
                self._loop.call_soon(self._give_back)

    def _give_back(self, again: bool = True) -> None:
        transport, manager = self.transport, self._manager
        if self._waiter is None and again and self._boundaries is not None:
            # start() has not taken the answered request's end yet: after it has.
            self._loop.call_soon(self._give_back, False)
            return
        if (
            self._boundaries is None
            or self._boundaries.partial
            or transport is None
            or transport.is_closing()
            or not isinstance(manager, Server)
            or manager.front is None
            or self._waiter is None  # start() is not waiting for a request
            or self._messages
            or self._request_in_progress
            or self._close
            or self._force_close
            or not self._keepalive
            or self._upgraded
            or self._payload_parser is not None
            or self._paused
            or self._reading_paused
        ):
            return
        front = manager.front(manager)
        self.transport = None  # so that leaving does not close it
        self.connection_lost(None)  # start() ends, the server forgets it
        transport.set_protocol(front)
        front.connection_made(transport)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, web_protocol.RequestPayloadError):
            # aiohttp reading the rest of a body the client broke (its encoding or
            # framing) after the handler's 400 (shared.errors) went out: the client's
            # error, already answered and logged; aiohttp closes the connection.
            log.info("rest of a malformed request body dropped", extra={"error": str(exc)})
            return
        super().log_exception(*args, **kw)

    def close(self) -> None:
        """No more requests (the server's shutdown). aiohttp stops reading at once,
        so a request begun whose body is still coming would never get the rest
        (aiohttp#2298); here it does, and is answered with `Connection: close`. A
        request behind it is not taken, and an idle connection closes now."""
        request = self._current_request
        if request is not None:
            # Read by the response when it is prepared; aiohttp's own fills this cache.
            request._cache["keep_alive"] = False
            if not request.content.is_eof():
                self._finishing = request.content
        super().close()

    def data_received(self, data: bytes) -> None:
        if self._boundaries is not None and not self._boundaries.feed(data):
            self._boundaries = None  # aiohttp's for good
        finishing = self._finishing
        if finishing is None or finishing.is_eof() or self.transport is None:
            super().data_received(data)
            return
        # Closing (or shutting down, which aiohttp marks force-closed before it waits
        # for the request): parse on, for the rest of this body only.
        closed = self._close, self._force_close
        self._close = self._force_close = False
        try:
            super().data_received(data)
        finally:
            self._close, self._force_close = closed
            self._messages.clear()  # requests after it: not begun, not taken

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # Part of a response is out already: only cutting the connection tells.
            return super().handle_error(request, status, exc, message)
        request_id = request.get(REQUEST_ID_KEY) or uuid.uuid4().hex
        extra = {"request_id": request_id}
        if isinstance(exc, HttpProcessingError):
            # The client's mistake, not ours: one line, without the request's bytes.
            status = _refused_status(exc, self.max_line_size, self.max_field_size)
            log.info(
                "request refused by the HTTP parser",
                extra={
                    "request_id": request_id,
                    "status": status,
                    "reason": type(exc).__name__,
                    "remote": request.remote,
                },
            )
            response = error_response(status, REFUSALS[status], extra=extra)
        elif status == 504:
            response = error_response(504, "request timed out", extra=extra)
        else:
            log.error("error outside the middlewares", exc_info=exc)
            response = error_response(500, "internal error", extra=extra)
        response.headers[REQUEST_ID_HEADER] = request_id
        response.force_close()
        return response


class Front(Protocol):
    """What the server needs of a connection served by a front: to be told to stop
    taking requests (close), and to be waited for at shutdown."""

    def close(self) -> None: ...

    async def shutdown(self, timeout: float | None) -> None: ...  # noqa: ASYNC109


# Makes the front for one connection, given the server that serves the app.
FrontFactory = Callable[["Server"], asyncio.BaseProtocol]
FRONT_KEY = web.AppKey[FrontFactory]("front")


class Server(web_server.Server):
    def __init__(self, *args: Any, front: FrontFactory | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.front = front
        # The connections a front serves and has not handed to aiohttp (yet).
        self.fronts: set[Front] = set()
        self.gives_back = give_back_supported()
        self._told_no_give_back = False

    def __call__(self) -> asyncio.BaseProtocol:  # type: ignore[override]
        if self.front is not None:
            return self.front(self)
        return self.handler()

    def handler(self, give_back: bool = False) -> web_protocol.RequestHandler:
        """aiohttp's protocol for a connection (a front's hand-off makes it here too;
        with `give_back`, it goes back to a new front between requests)."""
        handler = RequestHandler(self, loop=self._loop, **self._kwargs)
        if give_back and self.gives_back:
            handler.follow()
        elif give_back and not self._told_no_give_back:
            self._told_no_give_back = True
            log.warning(
                "aiohttp %s is not a release the give-back was tested with:"
                " a connection handed to aiohttp stays aiohttp's",
                aiohttp.__version__,
            )
        return handler

    def pre_shutdown(self) -> None:
        super().pre_shutdown()
        for front in list(self.fronts):
            front.close()

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        fronts = [front.shutdown(timeout) for front in list(self.fronts)]
        await asyncio.gather(super().shutdown(timeout), *fronts)


class AppRunner(web.AppRunner):
    """web.AppRunner whose connections are handled by `RequestHandler`, behind the
    app's front (FRONT_KEY) when it has one."""

    async def _make_server(self) -> web_server.Server:
        made = await super()._make_server()
        return Server(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            front=self._app.get(FRONT_KEY),
            **made._kwargs,
        )
