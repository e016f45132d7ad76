"""What the gateway sends upstream: which service, and which of the client's
headers go along (hop-by-hop and identity headers never do); and which of the
service's headers come back. Shared by the HTTP relay (gateway.proxy), which
writes its request heads as bytes, and the WebSocket relay
(gateway.websocket_proxy), which hands aiohttp a header dict."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from shared.forwarded import forwarded_chain, forwarded_scheme_and_host
from shared.metrics import ROUTE_HEADER
from shared.request_id import HEADER as REQUEST_ID_HEADER
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


def _identity(lowered: str) -> bool:
    return lowered in IDENTITY_HEADERS or lowered.startswith(IDENTITY_HEADER_PREFIXES)


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
        if _identity(lowered) or (websocket and lowered in WEBSOCKET_HANDSHAKE):
            del headers[name]
    # The chain this gateway vouches for (client, trusted proxies, its peer); what
    # the client wrote left of it is dropped.
    headers["X-Forwarded-For"] = ", ".join(forwarded_chain(request))
    headers["X-Forwarded-Proto"], headers["X-Forwarded-Host"] = forwarded_scheme_and_host(request)
    headers["X-Request-ID"] = request_id_of(request)
    return headers


# The HTTP relay frames its requests itself (Content-Length, or chunked), and has
# answered an `Expect: 100-continue` already: the client's framing stays behind.
_NOT_RELAYED = HOP_BY_HOP | {"content-length", "expect"}
# A verdict per header name as it was spelled, so that a request's headers are
# judged by one dict lookup each; bounded, since clients choose the names.
_verdicts: dict[bytes, bool] = {}
_MAX_VERDICTS = 1024


def _relayed(name: bytes) -> bool:
    verdict = _verdicts.get(name)
    if verdict is None:
        lowered = name.decode("latin-1").lower()
        verdict = not (lowered in _NOT_RELAYED or _identity(lowered))
        if len(_verdicts) < _MAX_VERDICTS:
            _verdicts[name] = verdict
    return verdict


def _encoded(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def request_head(
    request: web.Request, authority: bytes, body_length: int | None, *, chunked: bool = False
) -> bytes:
    """The request line and headers the service gets, as bytes (`head_bytes`), for a
    request aiohttp parsed."""
    tokens = _connection_tokens(request.headers) if "Connection" in request.headers else None
    scheme, host = forwarded_scheme_and_host(request)
    return head_bytes(
        request.method.encode(),
        _encoded(request.rel_url.raw_path_qs),
        request.raw_headers,
        tokens,
        authority,
        forwarded_for=", ".join(forwarded_chain(request)),
        scheme=scheme,
        host=host,
        request_id=request_id_of(request),
        body_length=body_length,
        chunked=chunked,
    )


def head_bytes(
    method: bytes,
    target: bytes,
    raw_headers: Iterable[tuple[bytes, bytes]],
    connection_tokens: Collection[str] | None,
    authority: bytes,
    *,
    forwarded_for: str,
    scheme: str,
    host: str,
    request_id: str,
    body_length: int | None,
    chunked: bool = False,
) -> bytes:
    """The request line and headers the service gets, as bytes: the client's
    end-to-end headers as it wrote them (`raw_headers`, without those its Connection
    header names), then the gateway's own. The body is `body_length` bytes, or
    `chunked`, or none at all. Both the aiohttp route (`request_head`) and the
    edge (gateway.edge) write their heads here."""
    tokens = connection_tokens
    parts = [b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, target, authority)]
    for name, value in raw_headers:
        if _relayed(name) and not (tokens and name.decode("latin-1").lower() in tokens):
            parts.append(b"%s: %s\r\n" % (name, value))
    parts.append(
        b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nX-Forwarded-Host: %s\r\n"
        b"X-Request-ID: %s\r\n"
        % (_encoded(forwarded_for), _encoded(scheme), _encoded(host), _encoded(request_id))
    )
    if chunked:
        parts.append(b"Transfer-Encoding: chunked\r\n\r\n")
    elif body_length is not None:
        parts.append(b"Content-Length: %d\r\n\r\n" % body_length)
    else:
        parts.append(b"\r\n")
    return b"".join(parts)


_ROUTE = ROUTE_HEADER.lower().encode()
# Dropped from every answer: the gateway sets its own request id and its own CORS
# headers (gateway.cors), and the route template is for the gateway's metrics only.
_NOT_RETURNED = frozenset(
    {name.encode() for name in HOP_BY_HOP}
    | {
        REQUEST_ID_HEADER.lower().encode(),
        _ROUTE,
        b"access-control-allow-origin",
        b"access-control-expose-headers",
    }
)
# A header name as the service spelled it: lowered, and as text. Bounded.
_names: dict[bytes, tuple[bytes, str]] = {}


def _decoded(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _name(spelled: bytes) -> tuple[bytes, str]:
    known = _names.get(spelled)
    if known is None:
        known = (spelled.lower(), _decoded(spelled))
        if len(_names) < _MAX_VERDICTS:
            _names[spelled] = known
    return known


def answer_headers(
    raw: list[tuple[bytes, bytes]],
) -> tuple[list[tuple[str, str]], str | None, bool]:
    """The service's end-to-end headers for the client (as text, for aiohttp), the
    route template it named, and whether they give the body's length."""
    kept, route, fixed, _ = kept_answer_headers(raw)
    return [(_name(name)[1], _decoded(value)) for name, value in kept], route, fixed


def kept_answer_headers(
    raw: list[tuple[bytes, bytes]],
) -> tuple[list[tuple[bytes, bytes]], str | None, bool, list[bytes]]:
    """The service's end-to-end headers for the client as it spelled them, the
    route template it named, whether they give the body's length, and the kept
    headers' names lowered."""
    headers: list[tuple[bytes, bytes]] = []
    kept: list[bytes] = []
    route = None
    connection: list[bytes] = []
    for spelled, value in raw:
        lowered = _name(spelled)[0]
        if lowered in _NOT_RETURNED:
            if lowered == _ROUTE:
                route = _decoded(value)
            elif lowered == b"connection":
                connection.append(value)
            continue
        headers.append((spelled, value))
        kept.append(lowered)
    if connection:  # and the headers it names, meant for this hop alone
        tokens = {t.strip().lower().encode() for v in connection for t in _decoded(v).split(",")}
        headers, kept = without(headers, kept, lambda _, lowered: lowered in tokens)
    return headers, route, b"content-length" in kept, kept


def without(
    headers: list[tuple[bytes, bytes]], names: list[bytes], drop: Callable[[int, bytes], bool]
) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """`headers` and their lowered `names` (kept_answer_headers'), without those for
    which `drop(index, lowered name)` holds."""
    kept = [
        (pair, lowered)
        for index, (pair, lowered) in enumerate(zip(headers, names, strict=True))
        if not drop(index, lowered)
    ]
    return [pair for pair, _ in kept], [lowered for _, lowered in kept]
