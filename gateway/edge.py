"""The gateway's public connections: a Protocol of its own in front of aiohttp's.

A relayed request through aiohttp's web layer cost the gateway about three times
what nginx spends relaying it, almost all of it aiohttp's server side (the request
and response objects, the router, the middlewares, signals); the relay's own code
is a small part. So each connection starts at an edge (shared.edge: requests parsed
by httptools,
llhttp, as the upstream client's answers are), and what gateway.edge_request says
the edge relays goes to the service by plain function calls (gateway.edge_relay),
with the same request id, client address, header rules, metrics, logs and error
answers as the aiohttp route.

Everything else goes to aiohttp, with the connection, between requests; keep-alive,
pipelining, timeouts, a client that hangs up and a graceful shutdown are
shared.edge's, as they are in aiohttp's shared.server.RequestHandler.

A relayed request never meets the app's middlewares or on_response_prepare
signals: what one of those does must be done in gateway/edge_*.py too (the tests
comparing the edge's bytes with aiohttp's catch a header it adds), and the app does
not start with one the edge does not name (shared.edge_reply.require_known).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from gateway.cors import add_cors_headers, preflight_middleware
from gateway.edge_relay import EdgeContext, hung_up, relay
from gateway.edge_request import ROUTES_KEY, EdgeRequest
from shared.edge import EdgeConnection
from shared.edge import edge_front as shared_edge_front
from shared.edge_reply import known_only
from shared.server import FrontFactory, Server

__all__ = ["EdgeConnection", "edge_front"]


class _Context(EdgeContext):
    def serve(self, connection: EdgeConnection, request: EdgeRequest) -> Coroutine[Any, Any, None]:
        return relay(connection, request)

    def hung_up(self, request: EdgeRequest, seconds: float) -> None:
        hung_up(self, request, seconds)


def edge_front(app: web.Application) -> FrontFactory:
    """The app's front (shared.server.FRONT_KEY): an EdgeConnection a connection. The
    edge hands CORS requests to aiohttp and adds the gateway's Vary itself
    (edge_relay), so of the app's own it knows the preflight and the CORS headers."""
    known_only(app, middlewares=[preflight_middleware], signals=[add_cors_headers])

    def context(server: Server) -> _Context:
        return _Context(app, app[ROUTES_KEY], server._kwargs)

    return shared_edge_front(context)
