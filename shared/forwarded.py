"""The client's address, computed once per request: the peer, or behind trusted
proxies the rightmost `X-Forwarded-For` entry that is not a trusted proxy (the
convention of uvicorn's `forwarded_allow_ips` and Home Assistant's
`forwarded.py`). Entries left of it were written by the client and prove nothing.

The login limit, the access log and the gateway's own `X-Forwarded-For` all read
it here, through `client_address` and `forwarded_chain`."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The trusted part of the chain, client first, ending with the peer. None (or absent,
# before the request middleware ran) when the peer is not a trusted proxy or sent
# no header: then the peer is the client.
CHAIN_KEY: web.RequestKey[tuple[str, ...] | None] = web.RequestKey("forwarded_chain")
INVALID_FORWARDED_FOR = "invalid X-Forwarded-For header"


def parse_address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def resolve_chain(
    peer: str | None, header_values: Sequence[str], trusted: Sequence[Network]
) -> tuple[str, ...] | None:
    """The trusted chain, client first and peer last; None when the peer itself is
    the client. Raises ValueError for an entry that is not an address, when the
    walk from the right reaches it (everything right of it was trusted)."""
    if not trusted or not header_values or peer is None:
        return None
    peer_address = parse_address(peer)
    if peer_address is None or not _trusted(peer_address, trusted):
        return None
    # Several X-Forwarded-For lines are one list, in order (RFC 9110 §5.3).
    entries = [entry for value in header_values for entry in value.split(",")]
    chain = [str(peer_address)]
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            raise ValueError(entry)
        chain.append(str(address))
        if not _trusted(address, trusted):
            break
    # All trusted: the leftmost entry is as far as anyone vouches for.
    chain.reverse()
    return tuple(chain)


def resolve_client(request: web.Request, trusted: Sequence[Network]) -> None:
    """Sets CHAIN_KEY for the request (base_app's request middleware calls it first
    thing); 400 for an X-Forwarded-For entry that is not an address, where it counts."""
    chain = None
    if trusted:
        try:
            chain = resolve_chain(
                request.remote, request.headers.getall("X-Forwarded-For", ()), trusted
            )
        except ValueError:
            # Imported here: shared.logs reads the address, and shared.errors imports the logs.
            from shared.errors import ApiError

            raise ApiError(400, INVALID_FORWARDED_FOR) from None
    request[CHAIN_KEY] = chain


def forwarded_chain(request: web.BaseRequest) -> tuple[str, ...]:
    """What this process vouches for: the client, the trusted proxies, the peer."""
    chain = request.get(CHAIN_KEY)
    return chain if chain is not None else (request.remote or "unknown",)


def client_address(request: web.BaseRequest) -> str:
    return forwarded_chain(request)[0]


def _last(lines: Sequence[str]) -> str | None:
    values = [v.strip() for line in lines for v in line.split(",")]
    return values[-1] if values and values[-1] else None


def forwarded_scheme_and_host(request: web.BaseRequest) -> tuple[str, str]:
    """The scheme and host the client asked for: as the trusted proxy in front says
    (its X-Forwarded-Proto / -Host, the last value), or as this process saw them."""
    if request.get(CHAIN_KEY) is None:  # the peer is no trusted proxy
        return request.scheme, request.host
    return scheme_and_host(
        request.scheme,
        request.host,
        request.headers.getall("X-Forwarded-Proto", ()),
        request.headers.getall("X-Forwarded-Host", ()),
    )


def scheme_and_host(
    scheme: str, host: str, protos: Sequence[str], hosts: Sequence[str]
) -> tuple[str, str]:
    """`forwarded_scheme_and_host` from the values: this process's scheme and host,
    and the X-Forwarded-Proto and -Host lines of a trusted proxy."""
    proto = _last(protos)
    if proto is not None and proto.lower() in ("http", "https"):
        scheme = proto.lower()
    forwarded_host = _last(hosts)
    if forwarded_host is not None and " " not in forwarded_host:
        host = forwarded_host
    return scheme, host
