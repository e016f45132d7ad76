"""The edge's relay of one request (gateway.edge): what the aiohttp route does
(gateway.proxy: a place in the service's pool, the request sent, the answer back;
502, 503, 504 as JSON), with the rest of what the web layer did around it done
here by plain calls: the request id in the log context and on the answer, the
metrics (the same series and labels: the service's route template, else the
gateway's), the access line for an answer the gateway made (a relayed one is the
service's to log), and the answer's head written as aiohttp writes it (the
service's end-to-end headers, then Content-Length or chunked framing, a default
Content-Type, Date, Server, Connection, X-Request-ID; CORS' Vary when origins are
listed). An answer that is all there leaves in one write; a longer one streams
with flow control both ways (gateway.edge_answer)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, cast

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import HttpVersion11
from aiohttp.log import access_logger
from aiohttp.web_log import AccessLogger as DefaultAccessLogger
from multidict import CIMultiDict

from gateway.cors import ORIGINS_KEY
from gateway.edge_answer import SERVER, answer, vary_origin
from gateway.edge_request import Decider, EdgeRequest, Routes
from gateway.identity import SETTINGS_KEY
from gateway.observability import GATEWAY_METRICS_KEY
from gateway.proxy import BODY_LIMIT_KEY, POOLS_KEY, send_request, take_place
from gateway.upstream import head_bytes
from gateway.upstream_client import UpstreamError
from shared.app import VERIFIER_KEY
from shared.errors import CLIENT_CLOSED_REQUEST, ApiError, error_response
from shared.forwarded import CHAIN_KEY
from shared.logs import USER_ID_KEY, request_id_var
from shared.metrics import METRICS_KEY
from shared.request_id import HEADER as REQUEST_ID_HEADER

if TYPE_CHECKING:
    from gateway.edge import EdgeConnection

log = logging.getLogger("gateway.proxy")
errors_log = logging.getLogger("shared.errors")


class EdgeContext:
    """What every connection's relay needs of the app, found once it has started."""

    def __init__(self, app: web.Application, routes: Routes, access: dict[str, Any]) -> None:
        self.loop = asyncio.get_running_loop()
        self.pools = app[POOLS_KEY]
        self.metrics = app[METRICS_KEY]
        self.upstream_errors = app[GATEWAY_METRICS_KEY].upstream_errors
        self.cors = bool(app[ORIGINS_KEY])
        trusted = app[SETTINGS_KEY].trusted_proxies
        self.decider = Decider(routes, app[VERIFIER_KEY], app[BODY_LIMIT_KEY], trusted, self.cors)
        # The gateway's own access line, for answers it makes (502, 503, 504).
        self.access_logger: AbstractAccessLogger | None = None
        # As aiohttp's RequestHandler makes it, with its defaults.
        logger = access.get("access_log", access_logger)
        if logger is not None:
            kind = access.get("access_log_class", DefaultAccessLogger)
            log_format = access.get("access_log_format", DefaultAccessLogger.LOG_FORMAT)
            self.access_logger = kind(logger, log_format)
        self._errors: dict[tuple[int, str], tuple[bytes, list[tuple[str, str]], bytes]] = {}

    def error(
        self, request: EdgeRequest, status: int, message: str, headers: dict[str, str] | None
    ) -> bytes:
        """The JSON error shared.errors makes, as aiohttp would send it."""
        rendered = self._errors.get((status, message))
        if rendered is None:
            response = error_response(status, message, headers=headers)
            line = f"HTTP/1.1 {response.status} {response.reason}\r\n".encode()
            body = cast(bytes, response.body)
            fields = [*response.headers.items(), (hdrs.CONTENT_LENGTH, str(len(body)))]
            rendered = self._errors[(status, message)] = (line, fields, body)
        line, fields, body = rendered
        parts = [line, *(f"{k}: {v}\r\n".encode() for k, v in fields)]
        parts.append(b"Date: %s\r\nServer: %s\r\n" % (rfc822_formatted_time().encode(), SERVER))
        if not request.keep_alive:
            parts.append(b"Connection: close\r\n")
        parts.append(b"%s: %s\r\n" % (REQUEST_ID_HEADER.encode(), request.request_id.encode()))
        if self.cors:
            parts.append(vary_origin([]))
        parts.append(b"\r\n")
        parts.append(body)
        return b"".join(parts)

    def log_access(self, request: EdgeRequest, status: int, length: int, seconds: float) -> None:
        """The access line of an answer the gateway made, as aiohttp's RequestHandler
        writes it (the access logger reads what it needs of these two stand-ins)."""
        if self.access_logger is not None and self.access_logger.enabled:
            self.access_logger.log(
                cast(web.BaseRequest, _Logged(request)),
                cast(web.StreamResponse, _Answer(request, status, length)),
                seconds,
            )


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


def hung_up(context: EdgeContext, request: EdgeRequest, seconds: float) -> None:
    """The client hung up before its body was all there: what the aiohttp route does
    when reading the body fails so (shared.errors.fault_response: 499, counted under
    the gateway's route, a line in the log and an access line)."""
    _client_gone(context, request, ConnectionResetError.__name__, seconds)
    metrics = context.metrics
    metrics.record(
        metrics.service, request.method, request.route.template, CLIENT_CLOSED_REQUEST, seconds
    )


def _client_gone(context: EdgeContext, request: EdgeRequest, error: str, seconds: float) -> None:
    """The log line and the access line of a request whose client went away first."""
    errors_log.info(
        "client disconnected",
        extra={
            "path": request.path,
            "method": request.method,
            "error": error,
            "request_id": request.request_id,
        },
    )
    context.log_access(request, CLIENT_CLOSED_REQUEST, 0, seconds)


async def relay(connection: EdgeConnection, request: EdgeRequest) -> None:
    context = connection.context
    request_id_var.set(request.request_id)
    metrics = context.metrics
    metrics.in_flight += 1
    connection.server.requests_count += 1
    started = time.perf_counter()
    route = request.route
    upstream = route.upstream
    service, template = metrics.service, route.template
    status = 500
    keep_alive = False
    written = connection.written
    try:
        pool = context.pools[upstream.service]
        head = head_bytes(
            request.method.encode(),
            request.target,
            request.headers,
            request.tokens,
            pool.authority,
            forwarded_for=request.forwarded_for,
            scheme=request.scheme,
            host=request.host,
            request_id=request.request_id,
            body_length=None if request.body is None else len(request.body),
        )
        try:
            await take_place(pool, upstream)
            try:
                exchange = await send_request(
                    upstream, pool, request.method, head, request.body, connection.gone
                )
                try:
                    status, named, keep_alive = await answer(connection, request, exchange)
                    service, template = upstream.service, named or template
                finally:
                    exchange.finish()
            finally:
                pool.release()
        except ApiError as exc:
            if exc.status in (502, 504):
                service = upstream.service
                context.upstream_errors.labels(service, str(exc.status)).inc()
            status = exc.status
            answer_bytes = context.error(request, status, exc.message, exc.headers)
            connection.write(answer_bytes)
            keep_alive = request.keep_alive
            context.log_access(request, status, len(answer_bytes), time.perf_counter() - started)
        except UpstreamError as exc:  # the client hung up first (send_request's `gone`)
            status = CLIENT_CLOSED_REQUEST
            _client_gone(context, request, type(exc).__name__, time.perf_counter() - started)
    except asyncio.CancelledError:
        status = CLIENT_CLOSED_REQUEST
        raise
    except Exception:
        errors_log.exception(
            "unhandled error", extra={"path": request.path, "method": request.method}
        )
        status = 500
        if connection.written == written:
            # Nothing of an answer out yet: the JSON 500 the request middleware gives.
            answer_bytes = context.error(request, status, "internal error", None)
            connection.write(answer_bytes)
            keep_alive = request.keep_alive
            context.log_access(request, status, len(answer_bytes), time.perf_counter() - started)
        else:
            connection.cut()  # too late for a status: the client sees a short answer
    finally:
        metrics.in_flight -= 1
        metrics.record(service, request.method, template, status, time.perf_counter() - started)
        connection.request_done(keep_alive)
