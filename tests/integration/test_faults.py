"""Faults told apart: a lost database is a 503, a client that hangs up is no error at
all, and a bug is a 500 with its traceback in the log."""

import asyncio
import logging
import os
import re

import asyncpg
import pytest
from aiohttp import web

from shared.app import request_middleware
from shared.errors import database_lost
from shared.metrics import METRICS_KEY, HttpMetrics
from tests.conftest import bearer

needs_embedded = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="stops the embedded server, which an external one is not",
)


async def create_chat_room(client, token, name="general"):
    r = await client.post(
        "/api/create_room", json={"room_name": name, "is_private": 0}, headers=bearer(token)
    )
    assert r.status == 201
    return (await r.json())["room_id"]


async def until(condition, *, what: str, limit_s: float = 30):
    """Wait for a state the test cannot be told of by an event; polls, bounded."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


@needs_embedded
async def test_sends_while_postgres_stops_are_201_or_503_never_500(
    gateway_stack, embedded_postgres, database_url, make_token, caplog
):
    client = gateway_stack.client
    token = make_token("alice")
    room_id = await create_chat_room(client, token)
    statuses: list[int] = []
    stop = asyncio.Event()

    async def sender() -> None:
        while not stop.is_set():
            r = await client.post(
                "/api/send_room_message",
                json={"room_id": room_id, "message": "x"},
                headers=bearer(token),
            )
            statuses.append(r.status)
            if r.status == 503:
                assert await r.json() == {
                    "error": "service unavailable",
                    "code": "service_unavailable",
                    "request_id": r.headers["X-Request-ID"],
                }

    async def sent(count: int, status: int) -> bool:
        return statuses.count(status) >= count

    # Ten clients sending all along; the database stops under them and comes back.
    senders = [asyncio.create_task(sender()) for _ in range(10)]
    loop = asyncio.get_running_loop()
    try:
        await until(lambda: sent(50, 201), what="sends stored before the stop")
        await loop.run_in_executor(None, embedded_postgres.stop_server)
        try:
            await until(lambda: sent(20, 503), what="sends refused during the stop")
        finally:
            await loop.run_in_executor(None, embedded_postgres.start_server)
        stored_before = statuses.count(201)
        await until(lambda: sent(stored_before + 50, 201), what="sends stored after the start")
    finally:
        stop.set()
        await asyncio.gather(*senders)
    # asyncpg's "cannot switch to state 15" from a connection dying mid-transaction
    # was a 500 here; it is the database's absence, so a 503 like the others.
    assert set(statuses) == {201, 503}
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    stored = await asyncpg.connect(database_url)
    try:
        count = await stored.fetchval("SELECT count(*) FROM chat.room_messages")
    finally:
        await stored.close()
    # A send whose commit the stop cut off may be stored yet answered 503: a retry
    # with an Idempotency-Key is what makes that safe.
    assert count >= statuses.count(201)


def _raised(exc: BaseException, *, during: BaseException | None = None) -> BaseException:
    try:
        try:
            if during is not None:
                raise during
        finally:
            raise exc
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    ("exc", "lost"),
    [
        # What a stop did to a send: the rollback after the lost connection failed too.
        (
            _raised(
                asyncpg.exceptions.InternalClientError(
                    "cannot switch to state 15; another operation (2) is in progress"
                ),
                during=asyncpg.exceptions.ConnectionDoesNotExistError(
                    "connection was closed in the middle of operation"
                ),
            ),
            True,
        ),
        # A BEGIN on a pooled connection whose server sent its FATAL shutdown unasked.
        (
            asyncpg.exceptions.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress"
            ),
            True,
        ),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.exceptions.InterfaceError("pool is closing"), True),
        (
            asyncpg.exceptions.InternalClientError(
                'cannot switch to state 15; protocol is in the "failed" state'
            ),
            True,
        ),
        # Misuse of a connection is a bug, and so is an OSError outside asyncpg.
        (
            asyncpg.exceptions.InterfaceError(
                "cannot perform operation: another operation is in progress"
            ),
            False,
        ),
        (
            asyncpg.exceptions.InternalClientError(
                "cannot switch to state 15; another operation (12) is in progress"
            ),
            False,
        ),
        (_raised(FileNotFoundError("/missing")), False),
        (_raised(KeyError("x"), during=ValueError("y")), False),
    ],
)
def test_what_counts_as_a_lost_database(exc, lost):
    assert database_lost(exc) is lost


def requests_counted(metrics_text: str, route: str) -> dict[str, float]:
    """status -> count of POSTs to `route`, from a /metrics page."""
    counted = {}
    for line in metrics_text.splitlines():
        ours = f'route="{route}"' in line and 'method="POST"' in line
        if line.startswith("http_requests_total{") and ours:
            status = re.search(r'status="(\d+)"', line)
            assert status is not None
            counted[status.group(1)] = float(line.rsplit(" ", 1)[1])
    return counted


async def hang_up_mid_body(server, path: str, token: str) -> None:
    _, writer = await asyncio.open_connection(server.host, server.port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    writer.write(head.encode() + b'{"room_id": 1, "mess')
    await writer.drain()
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("through", ["gateway", "chat service"])
async def test_a_client_hanging_up_mid_body_is_not_an_error(
    gateway_stack, make_token, caplog, through
):
    caplog.set_level(logging.INFO)
    client = gateway_stack.client
    token = make_token("alice")
    await create_chat_room(client, token)
    server = client.server if through == "gateway" else gateway_stack.chat
    await hang_up_mid_body(server, "/api/send_room_message", token)

    async def metrics_of(server, route):
        async with client.session.get(server.make_url("/metrics")) as r:
            return requests_counted(await r.text(), route)

    # The gateway counts what it relays under its catch-all route.
    route = "/api/{tail}" if through == "gateway" else "/api/send_room_message"

    async def counted():
        return (await metrics_of(server, route)).get("499") == 1.0

    await until(counted, what="the hung-up request counted as 499")
    for process in (client.server, gateway_stack.chat):
        for route in ("/api/{tail}", "/api/send_room_message"):
            statuses = await metrics_of(process, route)
            assert not [status for status in statuses if status.startswith("5")]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert any(rec.getMessage() == "client disconnected" for rec in caplog.records)


async def test_a_bug_is_a_500_with_its_traceback_in_the_log(aiohttp_client, caplog):
    async def broken(request: web.Request) -> web.Response:
        raise KeyError("a bug")

    async def broken_database_use(request: web.Request) -> web.Response:
        # asyncpg's own error for a misused connection: a bug, not a lost database.
        raise asyncpg.exceptions.InterfaceError(
            "cannot perform operation: another operation is in progress"
        )

    app = web.Application(middlewares=[request_middleware(())])
    app[METRICS_KEY] = HttpMetrics("test")
    app.router.add_get("/broken", broken)
    app.router.add_get("/misused", broken_database_use)
    client = await aiohttp_client(app)
    for path in ("/broken", "/misused"):
        caplog.clear()
        r = await client.get(path)
        assert r.status == 500
        assert (await r.json())["error"] == "internal error"
        [record] = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
        assert record.getMessage() == "unhandled error"
        assert record.exc_info is not None
