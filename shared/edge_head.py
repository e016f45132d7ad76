"""Which requests an edge (shared.edge) serves itself, decided from a request's head
as httptools parsed it: the checks every edge makes, whatever its routes.

An edge takes a request only when aiohttp would take it the same way without a word
of its own: an HTTP/1.1 request with a Host header, a plain path (no escapes, no dot
segments) the edge's `route` names, a body of a declared length within the limit or
none, none of `Transfer-Encoding`, `Expect`, `Upgrade` (or a Connection header naming
`upgrade`) nor any header the edge refuses besides, no duplicated singleton header,
no X-Forwarded-For a trusted proxy sent that is not a list of addresses, a head well
within aiohttp's limits, and, on a route that needs one, a token the verifier finds
valid without awaiting (cached, or its key at hand). Everything else is aiohttp's,
which answers it as it always did (its own routes, WebSockets, 400/401/413/414/431/501,
CORS requests).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from shared.auth import Identity, TokenVerifier, token_from_header
from shared.forwarded import Network, resolve_chain, scheme_and_host
from shared.request_id import request_id_from

# Well within aiohttp's limits (8190 bytes a line, 128 headers): a head near them is
# aiohttp's to judge.
MAX_HEAD = 8190
MAX_HEADERS = 100
METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS"})
# A path aiohttp's router sees as it is written: no escapes, no dot segments.
_PLAIN_PATH = re.compile(rb"/(?!/)[A-Za-z0-9\-_~!$&'()*+,;=:@/]*")
_PLAIN_QUERY = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]+")
_DOT_SEGMENT = re.compile(rb"/\.")
# A query parameter whose name and value read the same escaped or not.
_PLAIN_PAIR = re.compile(rb"([A-Za-z0-9\-._~]+)=([A-Za-z0-9\-._~]*)")

# What a header is to the edge, by its name as spelled.
PLAIN, AUTHORIZATION, LENGTH, CONNECTION, REQUEST_ID = range(5)
FORWARDED_FOR, FORWARDED_PROTO, FORWARDED_HOST, HOST, SINGLETON, ORIGIN, REFUSED = range(5, 12)
_KINDS = {
    "authorization": AUTHORIZATION,
    "content-length": LENGTH,
    "connection": CONNECTION,
    "x-request-id": REQUEST_ID,
    "x-forwarded-for": FORWARDED_FOR,
    "x-forwarded-proto": FORWARDED_PROTO,
    "x-forwarded-host": FORWARDED_HOST,
    "host": HOST,
    "origin": ORIGIN,
    # aiohttp refuses these twice (RFC 9110 singletons); Content-Length and Host too.
    **dict.fromkeys(
        (
            "content-location",
            "content-range",
            "content-type",
            "etag",
            "max-forwards",
            "server",
            "user-agent",
        ),
        SINGLETON,
    ),
    **dict.fromkeys(
        ("transfer-encoding", "expect", "upgrade", "sec-websocket-key1"),
        REFUSED,
    ),
}
_MAX_KINDS = 1024


def plain_query(target: bytes) -> dict[str, str] | None:
    """The query of a request target as aiohttp's `request.query` holds it, when it is
    plain: `name=value` pairs joined by `&`, each name once, with nothing to unescape
    or decode (no `%`, no `+`, no `;`, nothing but unreserved characters). None for
    any other, which only aiohttp (yarl) may read as it does."""
    _, mark, query = target.partition(b"?")
    if not mark:
        return {}
    pairs: dict[str, str] = {}
    for pair in query.split(b"&"):
        found = _PLAIN_PAIR.fullmatch(pair)
        if found is None:
            return None
        name, value = found.group(1).decode("ascii"), found.group(2).decode("ascii")
        if name in pairs:
            return None
        pairs[name] = value
    return pairs


def _text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


class EdgeRoute(Protocol):
    """A route an edge serves: whether it needs a token, and one of a guest's."""

    @property
    def public(self) -> bool: ...

    @property
    def guests(self) -> bool: ...


class EdgeRequest:
    """A request an edge serves: what its head said, and what the web layer adds
    (its id, its caller, the client's address)."""

    __slots__ = (
        "body",
        "body_length",
        "chain",
        "forwarded_for",
        "head_length",
        "headers",
        "host",
        "identity",
        "keep_alive",
        "method",
        "path",
        "query",
        "request_id",
        "route",
        "scheme",
        "target",
        "tokens",
        "user_id",
    )

    method: str
    target: bytes
    path: str
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    head_length: int
    body_length: int
    route: EdgeRoute
    request_id: str
    forwarded_for: str
    scheme: str
    host: str

    def __init__(self) -> None:
        # None: no body at all; filled from the bytes after the head when it has one.
        self.body: bytes | None = None
        self.chain: tuple[str, ...] | None = None
        self.tokens: set[str] | None = None
        self.identity: Identity | None = None
        self.user_id: str | None = None
        # Its query's parameters, for an edge whose route reads them (plain_query).
        self.query: dict[str, str] | None = None


class HeadDecider:
    """The decision for one head (`decide`): an EdgeRequest, or None for aiohttp.
    A subclass names the route a path goes to (`route`); `refused` are header names
    (lowercase) that send a request to aiohttp besides the ones every edge refuses."""

    def __init__(
        self,
        verifier: TokenVerifier,
        body_limit: int,
        trusted: Sequence[Network],
        cors: bool,
        refused: Iterable[str] = (),
    ) -> None:
        self.verifier = verifier
        self.body_limit = body_limit
        self.trusted = tuple(trusted)
        self.cors = cors
        self._rules = {**_KINDS, **dict.fromkeys(refused, REFUSED)}
        self._kinds: dict[bytes, int] = {}

    def route(self, method: bytes, path: bytes) -> EdgeRoute | None:
        """The route a plain path goes to; None: not the edge's."""
        raise NotImplementedError

    def kind_of(self, name: bytes) -> int:
        kind = self._kinds.get(name)
        if kind is None:
            kind = self._rules.get(name.decode("latin-1").lower(), PLAIN)
            if len(self._kinds) < _MAX_KINDS:
                self._kinds[name] = kind
        return kind

    def decide(
        self,
        method: bytes,
        url: bytes,
        headers: list[tuple[bytes, bytes]],
        raw: bytearray,
        *,
        version: str,
        keep_alive: bool,
        peer: str | None,
        scheme: str,
    ) -> EdgeRequest | None:
        if version != "1.1" or method not in METHODS or len(headers) > MAX_HEADERS:
            return None
        head_length = raw.find(b"\r\n\r\n") + 4
        if head_length < 4 or head_length > MAX_HEAD or not raw.startswith(method):
            return None
        path, _, query = url.partition(b"?")
        if not _PLAIN_PATH.fullmatch(path) or _DOT_SEGMENT.search(path):
            return None
        if b"?" in url and not _PLAIN_QUERY.fullmatch(query):
            return None
        route = self.route(method, path)
        if route is None:
            return None
        authorization = request_id = host = None
        tokens: set[str] | None = None
        xff: list[str] = []
        protos: list[str] = []
        hosts: list[str] = []
        singletons: set[bytes] = set()
        fixed_headers = None
        length: int | None = None
        kinds = self._kinds
        for index, (name, value) in enumerate(headers):
            kind = kinds.get(name)
            if kind is None:
                kind = self.kind_of(name)
            if value[-1:] in (b" ", b"\t"):
                # aiohttp reads a value without the blanks llhttp leaves at its end.
                value = value.rstrip(b" \t")
                if fixed_headers is None:
                    fixed_headers = list(headers)
                fixed_headers[index] = (name, value)
            if kind == PLAIN:
                continue
            if kind == AUTHORIZATION:
                if authorization is None:
                    authorization = value
            elif kind == REQUEST_ID:
                if request_id is None:
                    request_id = value
            elif kind == FORWARDED_FOR:
                xff.append(_text(value))
            elif kind == FORWARDED_PROTO:
                protos.append(_text(value))
            elif kind == FORWARDED_HOST:
                hosts.append(_text(value))
            elif kind == CONNECTION:
                found = {t.strip().lower() for t in _text(value).split(",")}
                if "upgrade" in found:
                    return None
                tokens = found if tokens is None else tokens | found
            elif kind in (HOST, LENGTH, SINGLETON):
                if name.lower() in singletons:
                    return None
                singletons.add(name.lower())
                if kind == HOST:
                    host = _text(value)
                elif kind == LENGTH:
                    length = int(value)  # digits: llhttp has checked
            elif kind == ORIGIN:
                if self.cors:
                    return None
            else:  # REFUSED
                return None
        if host is None or (length is not None and length > self.body_limit):
            return None
        request = EdgeRequest()
        if not route.public:
            token = None
            if authorization is not None:
                stripped = _text(authorization).strip()
                token = token_from_header(stripped) if stripped else None
            identity = self.verifier.identify_now(token) if token is not None else None
            if identity is None or (identity.is_guest and not route.guests):
                return None  # aiohttp verifies it, or answers 401
            request.identity = identity
            request.user_id = identity.user_id
        if self.trusted and xff:
            try:
                request.chain = resolve_chain(peer, xff, self.trusted)
            except ValueError:
                return None  # aiohttp answers 400
        if request.chain is not None:
            scheme, host = scheme_and_host(scheme, host, protos, hosts)
        request.method = method.decode()
        request.target = url
        request.path = path.decode()
        request.headers = fixed_headers if fixed_headers is not None else headers
        request.tokens = tokens
        request.keep_alive = keep_alive
        request.head_length = head_length
        request.body_length = length or 0
        if length == 0 or (length is None and method in (b"POST", b"PUT", b"PATCH")):
            request.body = b""  # a body even when empty
        request.route = route
        request.request_id = request_id_from(_text(request_id) if request_id else None)
        request.forwarded_for = ", ".join(request.chain or (peer or "unknown",))
        request.scheme = scheme
        request.host = host
        return request
