"""Which requests the gateway's edge (gateway.edge) relays itself, decided from a
request's head (shared.edge_head makes the checks every edge makes).

The edge takes only what the aiohttp routes of gateway.app would relay without a
word of their own: `GET`/`HEAD /rooms/code/{code}`, and `/api/...`, `/rooms`,
`/rooms/...` with a token the verifier finds valid without awaiting, a request the
checks of shared.edge_head take, and no Origin when the gateway answers CORS.
Everything else is aiohttp's, which answers it as it always did.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from gateway.upstream import Upstream
from shared.auth import TokenVerifier
from shared.edge_head import EdgeRequest, EdgeRoute, HeadDecider
from shared.forwarded import Network

__all__ = ["ROUTES_KEY", "Decider", "EdgeRequest", "Route", "Routes"]

_CODE = re.compile(rb"/rooms/code/[^/{}]+")


@dataclass(frozen=True)
class Route:
    """A relayed route of gateway.app: its service, and its template (the metrics'
    route when the service names none); `public` needs no token (the service's
    endpoint says who may call it: the gateway lets guests through)."""

    upstream: Upstream
    template: str
    public: bool = False
    guests: bool = True


@dataclass(frozen=True)
class Routes:
    code: Route  # GET /rooms/code/{code}, public
    api: Route  # /api/{tail}
    rooms: Route  # /rooms
    rooms_tail: Route  # /rooms/{tail}

    def of(self, method: bytes, path: bytes) -> tuple[Route, bool] | None:
        """The route a plain path goes to, and whether it is public; None for the
        gateway's own."""
        if path.startswith(b"/api/"):
            return self.api, False
        if path == b"/rooms":
            return self.rooms, False
        if path.startswith(b"/rooms/"):
            if method in (b"GET", b"HEAD") and _CODE.fullmatch(path):
                return self.code, self.code.public
            return self.rooms_tail, False
        return None


# The routes the edge relays, as gateway.app made them.
ROUTES_KEY = web.AppKey("edge_routes", Routes)


class Decider(HeadDecider):
    """The decision for one head (`decide`): an EdgeRequest whose route is a
    gateway Route, or None for aiohttp."""

    def __init__(
        self,
        routes: Routes,
        verifier: TokenVerifier,
        body_limit: int,
        trusted: Sequence[Network],
        cors: bool,
    ) -> None:
        super().__init__(verifier, body_limit, trusted, cors)
        self.routes = routes

    def route(self, method: bytes, path: bytes) -> EdgeRoute | None:
        routed = self.routes.of(method, path)
        return None if routed is None else routed[0]
