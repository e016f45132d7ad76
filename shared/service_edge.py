"""A room service's edge (shared.edge): its busiest routes served by plain function
calls, everything else by aiohttp.

A service lists the routes its edge serves (`EdgeRoute`: a method, the aiohttp
route's template and handler, and a plain function doing what the handler does,
with the same store calls). The edge takes a request of one of them when the checks
of shared.edge_head take it, no `Idempotency-Key` (a keyed request is the idempotency
layer's, shared.idempotency) and no `Content-Encoding` came with it; the token checks
are the auth middleware's (shared.app.auth_middleware) as the handler's endpoint
says (public, guests). Around the function it does what the web layer does around
the handler (shared.app.request_middleware, on_response_prepare, aiohttp's
RequestHandler): the request id in the log context and on the answer, the metrics
(the route's template, the status, the duration), the JSON errors of shared.errors
(a refusal, an invalid body, a fault), X-Route-Template, the access line. Its answer
is the handler's, byte for byte (tests/test_service_edge.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler

from shared.app import VERIFIER_KEY
from shared.bodies import json_body
from shared.edge import EdgeConnection, edge_front
from shared.edge_head import EdgeRequest, HeadDecider, plain_query
from shared.edge_reply import (
    EdgeReplies,
    Rendered,
    begin,
    errors_log,
    finish_head,
    known_only,
    render,
)
from shared.endpoints import endpoint_of
from shared.errors import CLIENT_CLOSED_REQUEST, answer_of
from shared.metrics import METRICS_KEY, ROUTE_HEADER
from shared.server import FRONT_KEY, Server
from shared.settings import CommonSettings

# What an edge function gets: the app, the request, the path's parameters; what it
# answers: a status and a JSON body (json_body's). It raises what the handler raises.
EdgeFunction = Callable[
    [web.Application, EdgeRequest, dict[str, str]], Awaitable[tuple[int, bytes]]
]
# Requests with these go to aiohttp: the idempotency layer, a body to decode.
REFUSED = ("idempotency-key", "content-encoding")


@dataclass(frozen=True)
class EdgeRoute:
    """A route of the app's router the edge serves: `function` does what `handler`
    does. Its template is the router's (the metrics' label, X-Route-Template). With
    `query`, the function reads the request's query (`EdgeRequest.query`)."""

    method: str
    template: str
    handler: Handler
    function: EdgeFunction
    query: bool = False

    @property
    def public(self) -> bool:
        spec = endpoint_of(self.handler)
        return spec is not None and spec.public

    @property
    def guests(self) -> bool:
        spec = endpoint_of(self.handler)
        return spec is None or spec.guests

    def pattern(self) -> re.Pattern[bytes]:
        """The paths of the template, as aiohttp's router matches a plain path."""
        parts = re.split(r"\{(\w+)\}", self.template)
        regex = "".join(
            re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^{{}}/]+)"
            for index, part in enumerate(parts)
        )
        return re.compile(regex.encode())


class _Route:
    """An EdgeRoute as the edge uses it: what it reads per request, found once."""

    __slots__ = (
        "function",
        "guests",
        "method",
        "pattern",
        "public",
        "query",
        "route_header",
        "template",
    )

    def __init__(self, route: EdgeRoute, announce: bool) -> None:
        self.method = route.method.encode()
        self.template = route.template
        self.function = route.function
        self.public = route.public
        self.guests = route.guests
        self.query = route.query
        self.pattern = route.pattern()
        self.route_header = f"{ROUTE_HEADER}: {route.template}\r\n".encode() if announce else b""


class ServiceDecider(HeadDecider):
    def __init__(self, app: web.Application, routes: Sequence[_Route], settings: CommonSettings):
        super().__init__(
            app[VERIFIER_KEY], settings.max_body_bytes, settings.trusted_proxies, False, REFUSED
        )
        self.routes = tuple(routes)

    def route(self, method: bytes, path: bytes) -> _Route | None:
        for route in self.routes:
            if route.method == method and route.pattern.fullmatch(path):
                return route
        return None

    def decide(self, method: bytes, url: bytes, *args: Any, **kwargs: Any) -> EdgeRequest | None:
        """HeadDecider's decision; on a route that reads its query, a plain query only."""
        request = super().decide(method, url, *args, **kwargs)
        if request is not None and cast(_Route, request.route).query:
            request.query = plain_query(url)
            if request.query is None:
                return None  # escapes, repeated names, odd characters: aiohttp's
        return request


class ServiceEdge:
    """The edge's context (shared.edge.Context) for one server of the app."""

    def __init__(
        self,
        app: web.Application,
        routes: Sequence[EdgeRoute],
        settings: CommonSettings,
        access: dict[str, Any],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.app = app
        self.metrics = app[METRICS_KEY]
        announce = self.metrics.announce_route
        self.decider = ServiceDecider(app, [_Route(r, announce) for r in routes], settings)
        self.replies = EdgeReplies(access)
        self._heads: dict[tuple[int, bytes], bytes] = {}

    def serve(self, connection: EdgeConnection, request: EdgeRequest) -> Coroutine[Any, Any, None]:
        return self._serve(connection, request)

    def hung_up(self, request: EdgeRequest, seconds: float) -> None:
        """What the request middleware does when reading the body fails so: 499, a
        line in the log and an access line."""
        self.replies.client_gone(request, ConnectionResetError.__name__, seconds)
        route = cast(_Route, request.route)
        metrics = self.metrics
        metrics.record(
            metrics.service, request.method, route.template, CLIENT_CLOSED_REQUEST, seconds
        )

    def _head(self, status: int, route: _Route) -> bytes:
        """json_body's head for `status`, with X-Route-Template, up to Content-Length."""
        key = (status, route.route_header)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = render(json_body(b"", status), route.route_header)[0]
        return head

    async def _serve(self, connection: EdgeConnection, request: EdgeRequest) -> None:
        metrics = self.metrics
        started = begin(connection, request, metrics)
        route = cast(_Route, request.route)
        status = 500
        keep_alive = False
        try:
            try:
                match = route.pattern.fullmatch(request.path.encode())
                params = {k: v.decode() for k, v in match.groupdict().items()} if match else {}
                status, body = await route.function(self.app, request, params)
                rendered: Rendered = (self._head(status, route), body)
            except Exception as exc:  # CancelledError is no Exception: it goes on up
                response = answer_of(
                    exc,
                    path=request.path,
                    method=request.method,
                    gone=connection.gone,
                    request_id=lambda: request.request_id,
                )
                if response is None:
                    raise
                status = response.status
                rendered = render(response, route.route_header)
            head, body = rendered
            keep_alive = request.keep_alive
            data = finish_head(head, len(body), request) + body
            connection.write(data)
            self.replies.log_access(request, status, len(data), time.perf_counter() - started)
        except asyncio.CancelledError:
            status = CLIENT_CLOSED_REQUEST
            raise
        except Exception:  # a bug here, or a redirect no edge function raises
            errors_log.exception(
                "unhandled error", extra={"path": request.path, "method": request.method}
            )
            status, keep_alive = 500, False
            connection.cut()
        finally:
            metrics.in_flight -= 1
            metrics.record(
                metrics.service,
                request.method,
                route.template,
                status,
                time.perf_counter() - started,
            )
            connection.request_done(keep_alive)


def _check(app: web.Application, route: EdgeRoute) -> None:
    """The route is the router's: its template, method and handler."""
    for resource in app.router.resources():
        if resource.canonical == route.template:
            for registered in resource:
                if registered.method == route.method and registered.handler is route.handler:
                    return
    raise ValueError(f"the edge's {route.method} {route.template} is not the router's")


def serve_at_the_edge(
    app: web.Application,
    settings: CommonSettings,
    routes: Sequence[EdgeRoute],
    middlewares: Sequence[object] = (),
) -> None:
    """The app's connections start at an edge serving `routes` (shared.server.FRONT_KEY).
    `middlewares`: the app's own middlewares whose work the routes' functions do
    themselves; the app does not start with another (shared.edge_reply.require_known),
    nor with a route that is not its router's."""
    known_only(app, middlewares)

    async def routes_are_the_router_s(app: web.Application) -> None:
        for route in routes:
            _check(app, route)

    app.on_startup.insert(0, routes_are_the_router_s)

    def context(server: Server) -> ServiceEdge:
        return ServiceEdge(app, routes, settings, server._kwargs)

    app[FRONT_KEY] = edge_front(context, give_back=True)
