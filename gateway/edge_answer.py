"""A service's answer, relayed by the edge (gateway.edge) as the aiohttp route
(gateway.proxy) sends it: the same status line and headers in the same order, the
same framing, the same bytes. An answer all there when its head arrives leaves in
one write; a longer one streams (its headers with its first bytes when its length
is known, at once and chunked when not), waiting for the client to drain and the
service to send; a service failing mid-answer cuts the client's connection."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from aiohttp.client_exceptions import ClientConnectionResetError
from aiohttp.helpers import must_be_empty_body, rfc822_formatted_time, should_remove_content_length

from gateway.edge_request import EdgeRequest
from gateway.upstream import kept_answer_headers, without
from gateway.upstream_client import Exchange, UpstreamError
from shared.edge_reply import SERVER

if TYPE_CHECKING:
    from gateway.edge_relay import EdgeContext
    from shared.edge import EdgeConnection

log = logging.getLogger("gateway.proxy")


def vary_origin(values: list[bytes]) -> bytes:
    """gateway.cors' Vary for an answer to a request without Origin, given the
    answer's first Vary value (if any)."""
    text = values[0].decode("latin-1") if values else ""
    present = [v.strip() for v in text.split(",") if v.strip()]
    if "origin" not in {v.lower() for v in present}:
        present.append("Origin")
    return b"Vary: %s\r\n" % ", ".join(present).encode("latin-1")


async def answer(
    connection: EdgeConnection, request: EdgeRequest, exchange: Exchange
) -> tuple[int, str | None, bool]:
    """Relays the answer; its status, the route template the service named, and
    whether the connection may serve another request."""
    status = exchange.status
    method = request.method
    headers, named, fixed, names = kept_answer_headers(exchange.headers)
    empty = must_be_empty_body(method, status)
    length: int | None = None
    added_length = False
    if fixed:
        for (_, value), lowered in zip(headers, names, strict=True):
            if lowered == b"content-length":
                length = int(value)
                break
        if empty and should_remove_content_length(method, status):
            headers, names = without(
                headers, names, lambda _, lowered: lowered == b"content-length"
            )
    elif exchange.complete and method != "HEAD" and status not in (204, 304):
        # All there already (it came chunked): the client gets it with its length.
        length, fixed, added_length = exchange.buffered, True, True
    chunked = not fixed and not empty
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, exchange.reason)]
    vary = None
    if cast("EdgeContext", connection.context).cors:
        # gateway.cors adds Origin to the first Vary in its place, the others dropped.
        values = [v for (_, v), lowered in zip(headers, names, strict=True) if lowered == b"vary"]
        vary = vary_origin(values)
        if values:
            first = names.index(b"vary")
            headers, names = without(
                headers, names, lambda index, lowered: lowered == b"vary" and index != first
            )
    for pair, lowered in zip(headers, names, strict=True):
        if vary is not None and lowered == b"vary":
            parts.append(vary)
            vary = b""
        else:
            parts.append(b"%s: %s\r\n" % pair)
    if added_length:
        parts.append(b"Content-Length: %d\r\n" % exchange.buffered)
    connection_header = b"connection" in names
    if status == 426:
        # Upgrade is hop-by-hop, but this hop too needs the client to upgrade.
        upgrade = next((v for n, v in exchange.headers if n.lower() == b"upgrade"), b"websocket")
        parts.append(b"Upgrade: %s\r\nConnection: Upgrade\r\n" % upgrade)
        connection_header = True
    if chunked:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    if not empty and length != 0 and b"content-type" not in names:
        parts.append(b"Content-Type: application/octet-stream\r\n")
    if b"date" not in names:
        parts.append(b"Date: %s\r\n" % rfc822_formatted_time().encode())
    if b"server" not in names:
        parts.append(b"Server: %s\r\n" % SERVER)
    if not connection_header and not request.keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"X-Request-ID: %s\r\n" % request.request_id.encode())
    if vary:
        parts.append(vary)
    parts.append(b"\r\n")
    head = b"".join(parts)
    keep_alive = request.keep_alive
    try:
        if connection.gone():
            raise ClientConnectionResetError("Cannot write to closing transport")
        if exchange.complete:
            body = exchange.take()
            connection.write(head + body if not empty else head)
            return status, named, keep_alive
        if chunked:
            connection.write(head)
            head = b""
        while chunk := await exchange.next_chunk():
            if connection.gone():
                raise ClientConnectionResetError("Cannot write to closing transport")
            if chunked:
                connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                connection.write(head + chunk if head else chunk)
                head = b""
            await connection.drain()
        connection.write(b"0\r\n\r\n" if chunked else head)
    except (UpstreamError, ConnectionError) as exc:
        # Too late for an error status: cut the connection so the client sees a short body.
        log.warning("upstream failed mid-response", extra={"error": repr(exc)})
        connection.cut()
        keep_alive = False
    return status, named, keep_alive
