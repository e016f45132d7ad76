"""Helpers for the services' edge tests (shared.service_edge): the same bytes sent to
a service with its edge and to one without (aiohttp alone), and what the edge served."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from typing import Any

import pytest

from shared.logs import AccessLogger
from shared.server import FRONT_KEY
from tests.conftest import ServiceTestServer
from tests.gateway.raw_http import Answer, RawClient

DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")
# What differs between two rooms or messages made by the same request: ids, codes, times.
VARYING = re.compile(rb'"(code|\w*(?:[iI]d|At|_at))":("[^"]*"|\d+)')


async def exchange(port: int, data: bytes) -> Answer:
    client = await RawClient.open(port)
    try:
        client.send(data)
        return await client.answer()
    finally:
        await client.close()


def masked(answer: Answer, varying: bool = False, new_ids: bool = False) -> bytes:
    """The answer without its Date; with `varying`, without the values that differ
    between two rooms made alike; with `new_ids`, without its request id (one aiohttp
    made for a request it refused before any middleware)."""
    raw = DATE.sub(b"\r\nDate: -\r\n", answer.raw)
    if new_ids and (request_id := answer.header("X-Request-ID")):
        raw = raw.replace(request_id.encode(), b"-")
    return VARYING.sub(rb'"\1":"-"', raw) if varying else raw


def served_by_the_edge(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`METHOD path` of each request an edge serves from now on."""
    from shared.service_edge import ServiceEdge

    served: list[str] = []
    serve = ServiceEdge.serve

    def counted(self: ServiceEdge, connection: Any, request: Any) -> Any:
        served.append(f"{request.method} {request.path}")
        return serve(self, connection, request)

    monkeypatch.setattr(ServiceEdge, "serve", counted)
    return served


def recorded(monkeypatch: pytest.MonkeyPatch) -> asyncio.Queue[int]:
    """The status of each request the apps' metrics count from now on."""
    from shared.metrics import HttpMetrics

    statuses: asyncio.Queue[int] = asyncio.Queue()
    record = HttpMetrics.record

    def noticed(self: HttpMetrics, *args: Any) -> None:
        record(self, *args)
        statuses.put_nowait(args[3])

    monkeypatch.setattr(HttpMetrics, "record", noticed)
    return statuses


async def pair(aiohttp_client: Any, make_app: Any) -> tuple[Any, Any]:
    """Two servers of apps `make_app()` makes, logging as the processes do
    (shared.logs.AccessLogger): with the edge, and aiohttp alone."""
    clients = []
    for edge in (True, False):
        app = make_app()
        if not edge:
            del app[FRONT_KEY]
        server = ServiceTestServer(app)
        await server.start_server(access_log_class=AccessLogger)
        clients.append(await aiohttp_client(server))
    return clients[0], clients[1]


def access_lines(records: Iterable[logging.LogRecord]) -> list[dict[str, Any]]:
    """The access lines' fields, without their duration."""
    fields = ("request_id", "method", "path", "status", "remote", "user_id")
    return [
        {name: getattr(record, name, None) for name in fields}
        for record in records
        if record.name == "aiohttp.access"
    ]


async def counted(client: Any) -> list[str]:
    """The request counts of the app's metrics (by status, and timed), but /metrics' own."""
    text = await (await client.get("/metrics")).text()
    return sorted(
        line
        for line in text.splitlines()
        if line.startswith(("http_requests_total{", "http_request_duration_seconds_count{"))
        and "/metrics" not in line
    )
