"""What the gateway sends upstream: which service, and which of the client's
headers go along (hop-by-hop and identity headers never do). Shared by the
HTTP relay (gateway.proxy) and the WebSocket relay (gateway.websocket_proxy)."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from shared.forwarded import forwarded_chain, forwarded_scheme_and_host
from shared.request_id import request_id_of

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the gateway alone: a client sending them is not believed.
IDENTITY_HEADER_PREFIXES = (
    "x-user",
    "x-auth",
    "x-forwarded-",
    "x-remote-",
    "x-real-ip",
    "x-client-ip",
)
IDENTITY_HEADERS = frozenset({"forwarded", "remote-user", "x-request-id", "host"})
WEBSOCKET_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-accept",
    }
)


@dataclass(frozen=True)
class Upstream:
    name: str
    url: str
    # Its name in metrics labels: "chat", "meeting".
    service: str


SESSION_KEY = web.AppKey("upstream_session", aiohttp.ClientSession)


def _connection_tokens(headers: CIMultiDictProxy[str]) -> set[str]:
    return {
        token.strip().lower()
        for value in headers.getall("Connection", [])
        for token in value.split(",")
    }


def end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    drop = HOP_BY_HOP | _connection_tokens(headers)
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


def upstream_headers(request: web.Request, *, websocket: bool = False) -> CIMultiDict[str]:
    headers = end_to_end(request.headers)
    for name in list(headers):
        lowered = name.lower()
        if (
            lowered in IDENTITY_HEADERS
            or lowered.startswith(IDENTITY_HEADER_PREFIXES)
            or (websocket and lowered in WEBSOCKET_HANDSHAKE)
        ):
            del headers[name]
    # The chain this gateway vouches for (client, trusted proxies, its peer); what
    # the client wrote left of it is dropped.
    headers["X-Forwarded-For"] = ", ".join(forwarded_chain(request))
    headers["X-Forwarded-Proto"], headers["X-Forwarded-Host"] = forwarded_scheme_and_host(request)
    headers["X-Request-ID"] = request_id_of(request)
    return headers
