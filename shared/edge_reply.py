"""What an edge (shared.edge) writes and logs for a request it serves, as aiohttp's
web layer and this project's middlewares would: an answer's head in aiohttp's order
(the response's own headers, the middlewares', Content-Length, Date, Server, Connection when the
connection closes, then X-Request-ID, which the app's on_response_prepare adds), the
JSON errors of shared.errors, and the access line (shared.logs.AccessLogger, or
whichever logger the server was given, reading what it needs of two stand-ins)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from aiohttp.log import access_logger
from aiohttp.web_log import AccessLogger as DefaultAccessLogger
from multidict import CIMultiDict

from shared.edge_head import EdgeRequest
from shared.errors import CLIENT_CLOSED_REQUEST, error_response
from shared.forwarded import CHAIN_KEY
from shared.logs import USER_ID_KEY, request_id_var
from shared.metrics import HttpMetrics
from shared.request_id import HEADER as REQUEST_ID_HEADER

if TYPE_CHECKING:
    from shared.edge import EdgeConnection

errors_log = logging.getLogger("shared.errors")

SERVER = SERVER_SOFTWARE.encode()
_REQUEST_ID = REQUEST_ID_HEADER.encode()

# A rendered answer: its head up to Content-Length (its status line, and its own
# headers), and its body.
Rendered = tuple[bytes, bytes]


def render(response: web.Response, more: bytes = b"") -> Rendered:
    """`response` (a web.Response with its body) as aiohttp writes it, up to its
    Content-Length; `more` are the headers the app's middlewares add to it."""
    head = f"HTTP/1.1 {response.status} {response.reason}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in response.headers.items()
    )
    return head.encode("utf-8") + more, cast(bytes, response.body)


def finish_head(head: bytes, length: int, request: EdgeRequest, trailer: bytes = b"") -> bytes:
    """A head's last headers, as aiohttp and the app's on_response_prepare add them
    after the response's own: Content-Length, Date, Server, Connection, X-Request-ID,
    then `trailer` (headers an edge adds last), and the blank line."""
    return b"%sContent-Length: %d\r\nDate: %s\r\nServer: %s\r\n%s%s: %s\r\n%s\r\n" % (
        head,
        length,
        rfc822_formatted_time().encode(),
        SERVER,
        b"" if request.keep_alive else b"Connection: close\r\n",
        _REQUEST_ID,
        request.request_id.encode(),
        trailer,
    )


def begin(connection: EdgeConnection, request: EdgeRequest, metrics: HttpMetrics) -> float:
    """A request an edge serves begins, as the request middleware begins one: its id
    in the log context, in flight, counted by the server; when (time.perf_counter)."""
    request_id_var.set(request.request_id)
    metrics.in_flight += 1
    connection.server.requests_count += 1
    return time.perf_counter()


class EdgeReplies:
    """An edge's JSON errors and access lines, for one server's connections. The
    access logger is made as aiohttp's RequestHandler makes it from the server's
    arguments (`access`), with its defaults."""

    def __init__(self, access: dict[str, Any], trailer: bytes = b"") -> None:
        self.trailer = trailer
        self.access_logger: AbstractAccessLogger | None = None
        logger = access.get("access_log", access_logger)
        if logger is not None:
            kind = access.get("access_log_class", DefaultAccessLogger)
            log_format = access.get("access_log_format", DefaultAccessLogger.LOG_FORMAT)
            self.access_logger = kind(logger, log_format)
        self._errors: dict[tuple[int, str], Rendered] = {}

    def error(
        self, request: EdgeRequest, status: int, message: str, headers: dict[str, str] | None = None
    ) -> bytes:
        """The JSON error shared.errors.error_response makes, as aiohttp would send it."""
        rendered = self._errors.get((status, message))
        if rendered is None:
            response = error_response(status, message, headers=headers)
            rendered = self._errors[(status, message)] = render(response)
        head, body = rendered
        return finish_head(head, len(body), request, self.trailer) + body

    def log_access(self, request: EdgeRequest, status: int, length: int, seconds: float) -> None:
        """The access line, as aiohttp's RequestHandler writes it (the access logger
        reads what it needs of these two stand-ins)."""
        if self.access_logger is not None and self.access_logger.enabled:
            self.access_logger.log(
                cast(web.BaseRequest, _Logged(request)),
                cast(web.StreamResponse, _Answer(request, status, length)),
                seconds,
            )

    def client_gone(self, request: EdgeRequest, error: str, seconds: float) -> None:
        """The log line and the access line of a request whose client went away
        first (shared.errors.fault_response's, and a 499)."""
        errors_log.info(
            "client disconnected",
            extra={
                "path": request.path,
                "method": request.method,
                "error": error,
                "request_id": request.request_id,
            },
        )
        self.log_access(request, CLIENT_CLOSED_REQUEST, 0, seconds)


class _Logged:
    """What an access logger reads of a request (shared.logs.AccessLogger's fields,
    and aiohttp's default format's)."""

    version = HttpVersion11

    def __init__(self, request: EdgeRequest) -> None:
        self.method = request.method
        self.path = request.path
        self.path_qs = request.target.decode("utf-8", "surrogateescape")
        self.remote = request.forwarded_for.rsplit(", ", 1)[-1]
        self.headers = CIMultiDict(
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in request.headers
        )
        self._values: dict[object, object] = {
            USER_ID_KEY: request.user_id,
            CHAIN_KEY: request.chain,
        }

    def get(self, key: object, default: object = None) -> object:
        return self._values.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._values


class _Answer:
    def __init__(self, request: EdgeRequest, status: int, length: int) -> None:
        self.status = status
        self.body_length = length
        self.headers = CIMultiDict({REQUEST_ID_HEADER: request.request_id})


def _name(function: object) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', function)}"


def require_known(
    app: web.Application, middlewares: Sequence[object] = (), signals: Sequence[object] = ()
) -> None:
    """An edge serves its requests without the app's middlewares and
    on_response_prepare signals, doing itself what those it was written against do:
    shared.app's (the request middleware, the token check, on_response_prepare) and
    the app's own it names. One added to the app later would be skipped for the
    edge's requests without a word, so the app refuses to start instead (called by
    on_startup, once the middlewares are final)."""
    from shared.app import auth_middleware, on_response_prepare, request_middleware

    known = {_name(request_middleware(())), _name(auth_middleware), _name(on_response_prepare)}
    known.update(_name(function) for function in (*middlewares, *signals))
    used: list[object] = [*app.middlewares, *app.on_response_prepare]
    unknown = [_name(function) for function in used if _name(function) not in known]
    if unknown:
        raise RuntimeError(
            f"the edge does not do what {', '.join(unknown)} does: do it in the edge"
            " too (and name it where the edge is set up), or leave the route to aiohttp"
        )


def known_only(
    app: web.Application, middlewares: Sequence[object] = (), signals: Sequence[object] = ()
) -> None:
    """`require_known` when the app starts, before its cleanup contexts open anything."""

    async def check(app: web.Application) -> None:
        require_known(app, middlewares, signals)

    app.on_startup.insert(0, check)
