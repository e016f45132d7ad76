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

from aiohttp import web

from gateway.cors import ORIGINS_KEY
from gateway.edge_answer import answer, vary_origin
from gateway.edge_request import Decider, EdgeRequest, Route, Routes
from gateway.identity import SETTINGS_KEY
from gateway.observability import GATEWAY_METRICS_KEY
from gateway.proxy import BODY_LIMIT_KEY, POOLS_KEY, send_request, take_place
from gateway.upstream import head_bytes
from gateway.upstream_client import UpstreamError
from shared.app import VERIFIER_KEY
from shared.edge_reply import EdgeReplies, begin
from shared.errors import CLIENT_CLOSED_REQUEST, ApiError
from shared.metrics import METRICS_KEY

if TYPE_CHECKING:
    from shared.edge import EdgeConnection

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
        # The gateway's own answers (502, 503, 504) and their access lines; gateway.cors
        # adds its Vary last.
        self.replies = EdgeReplies(access, vary_origin([]) if self.cors else b"")


def hung_up(context: EdgeContext, request: EdgeRequest, seconds: float) -> None:
    """The client hung up before its body was all there: what the aiohttp route does
    when reading the body fails so (shared.errors.fault_response: 499, counted under
    the gateway's route, a line in the log and an access line)."""
    context.replies.client_gone(request, ConnectionResetError.__name__, seconds)
    metrics = context.metrics
    route = cast(Route, request.route)
    metrics.record(metrics.service, request.method, route.template, CLIENT_CLOSED_REQUEST, seconds)


async def relay(connection: EdgeConnection, request: EdgeRequest) -> None:
    context = cast(EdgeContext, connection.context)
    metrics = context.metrics
    started = begin(connection, request, metrics)
    route = cast(Route, request.route)
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
            answer_bytes = context.replies.error(request, status, exc.message, exc.headers)
            connection.write(answer_bytes)
            keep_alive = request.keep_alive
            context.replies.log_access(
                request, status, len(answer_bytes), time.perf_counter() - started
            )
        except UpstreamError as exc:  # the client hung up first (send_request's `gone`)
            status = CLIENT_CLOSED_REQUEST
            context.replies.client_gone(request, type(exc).__name__, time.perf_counter() - started)
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
            answer_bytes = context.replies.error(request, status, "internal error")
            connection.write(answer_bytes)
            keep_alive = request.keep_alive
            context.replies.log_access(
                request, status, len(answer_bytes), time.perf_counter() - started
            )
        else:
            connection.cut()  # too late for a status: the client sees a short answer
    finally:
        metrics.in_flight -= 1
        metrics.record(service, request.method, template, status, time.perf_counter() - started)
        connection.request_done(keep_alive)
