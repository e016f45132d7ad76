"""The meeting's edge (shared.service_edge, meeting_service.edge): a create without an
Idempotency-Key and a lookup by code are served by plain calls, byte for byte as the
aiohttp handlers answer them, with the same access lines and metrics; everything
else is aiohttp's, on the same connection."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
import pytest

from meeting_service.app import create_app
from meeting_service.batches import NEW_ROOM_KEY, ROOM_BY_CODE_KEY
from meeting_service.edge import EDGE_ROUTES
from meeting_service.room_codes import new_room_code
from meeting_service.settings import MeetingSettings
from shared.logs import request_id_var
from shared.metrics import METRICS_KEY
from shared.service_edge import EdgeRoute, serve_at_the_edge
from tests.gateway.raw_http import RawClient, request
from tests.gateway.test_edge import called
from tests.service_edge import (
    access_lines,
    counted,
    exchange,
    masked,
    pair,
    recorded,
    served_by_the_edge,
)


@pytest.fixture
def meeting_pair(database_url: str, jwks_json: str, aiohttp_client: Any) -> Any:
    async def make(code_generator: Any = new_room_code, **overrides: Any) -> tuple[Any, Any]:
        def app() -> Any:
            settings = MeetingSettings(database_url=database_url, jwks=jwks_json, **overrides)
            return create_app(settings, code_generator=code_generator)

        return await pair(aiohttp_client, app)

    return make


def _create(token: str, body: bytes, **headers: str) -> bytes:
    return request(
        "POST",
        "/rooms",
        {"Authorization": f"Bearer {token}", "X-Request-ID": "c-1", **headers},
        body,
    )


async def test_creates_and_lookups_are_answered_byte_for_byte_as_aiohttp_does(
    meeting_pair, make_token, monkeypatch
):
    served = served_by_the_edge(monkeypatch)
    edge, plain = await meeting_pair()
    token = make_token("alice")
    created = await exchange(edge.server.port, _create(token, b'{"name": "Stand-up"}'))
    code = json.loads(created.body)["code"]
    served.clear()
    creates = [
        b'{"name": "Stand-up"}',
        b'{"name": "Stand-up", "waitingRoom": true, "maxParticipants": 10}',
        b"",  # every field's default
        b"{}",
        b"not json",
        b" ",
        b"[]",
        b"[" * 100_000,
        b'{"name": 5}',
        b'{"name": ""}',
        b'{"maxParticipants": 0, "waitingRoom": "yes"}',
        b'{"name": "x", "unknown": 1}',
        '{"name": "caf\u00e9 \u2615"}'.encode(),
        b'\xef\xbb\xbf{"name": "bom"}',
        b'{"name": "\\u0000"}',
    ]
    requests = [_create(token, body) for body in creates]
    requests += [
        _create(token, b"{}", **{"Connection": "close"}),
        _create(token, b"{}", **{"X-Request-ID": "bad id!"}),
        _create(token, b"{}", **{"Content-Type": "text/plain"}),
        request("POST", "/rooms?x=1", {"Authorization": token, "X-Request-ID": "q"}, b"{}"),
    ]
    lookups = [code, code.upper(), "abc-def-ghi", "x" * 300, "ab%20c"]
    requests += [request("GET", f"/rooms/code/{c}", {"X-Request-ID": "l-1"}) for c in lookups]
    requests.append(
        request("GET", f"/rooms/code/{code}", {"Authorization": "Bearer x", "X-Request-ID": "l"})
    )
    for data in requests:
        a = await exchange(edge.server.port, data)
        b = await exchange(plain.server.port, data)
        if b"bad id!" in data:  # a new id each: the rest is the same
            a.raw = a.raw.replace(a.header("X-Request-ID").encode(), b"-")
            b.raw = b.raw.replace(b.header("X-Request-ID").encode(), b"-")
        assert masked(a, varying=True).decode() == masked(b, varying=True).decode(), data[:200]
        assert a.status < 500
    assert len(served) == len(requests) - 1  # all but the escaped code (aiohttp's router)
    assert "GET /rooms/code/ab%20c" not in served


async def test_a_refusal_of_the_store_is_the_same(meeting_pair, make_token, monkeypatch):
    """Codes that always collide: the store's refusal, in the API's words (400)."""
    served = served_by_the_edge(monkeypatch)
    edge, plain = await meeting_pair(code_generator=lambda: "aaa-bbb-ccc")
    token = make_token("alice")
    assert (await exchange(edge.server.port, _create(token, b"{}"))).status == 201
    a = await exchange(edge.server.port, _create(token, b"{}"))
    b = await exchange(plain.server.port, _create(token, b"{}"))
    assert a.status == 400
    assert masked(a) == masked(b)
    assert served == ["POST /rooms", "POST /rooms"]


async def test_what_the_edge_does_not_take_is_aiohttp_s(
    meeting_pair, make_token, signing_key, monkeypatch
):
    served = served_by_the_edge(monkeypatch)
    edge, plain = await meeting_pair(max_body_bytes=64)
    token = make_token("alice")
    auth = {"Authorization": f"Bearer {token}", "X-Request-ID": "n-1"}
    requests = [
        request("POST", "/rooms", {"X-Request-ID": "n-1"}, b"{}"),  # no token: 401
        request("POST", "/rooms", {**auth, "Authorization": "Bearer x.y.z"}, b"{}"),
        request("POST", "/rooms", {**auth, "Authorization": f"Bearer {make_token(ttl_s=-60)}"}),
        request("POST", "/rooms", {**auth, "Authorization": make_token(role="guest")}, b"{}"),
        request("POST", "/rooms", {**auth, "Idempotency-Key": ""}, b"{}"),  # 400
        request("POST", "/rooms", {**auth, "Content-Encoding": "gzip"}, b"{}"),
        request("POST", "/rooms", auth, b'{"name": "' + b"x" * 64 + b'"}'),  # 413
        request("POST", "/rooms", {**auth, "Expect": "100-continue"}, b"{}"),
        (
            b"POST /rooms HTTP/1.1\r\nHost: h\r\nX-Request-ID: n-1\r\nAuthorization: "
            + token.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        ),
        request("PUT", "/rooms", auth, b"{}"),  # 405
        request("GET", "/rooms/code/abc-def-ghi/x", auth),
        request("GET", "/rooms/code/./abc", auth),
        request("POST", "/rooms", {**auth, "X-Request-ID": "x", "Host": "a\r\nHost: b"}),
        b"POST /rooms HTTP/1.0\r\nHost: h\r\nX-Request-ID: n-1\r\nAuthorization: "
        + token.encode()
        + b"\r\nContent-Length: 2\r\n\r\n{}",
    ]
    for data in requests:
        a = await exchange(edge.server.port, data)
        b = await exchange(plain.server.port, data)
        assert masked(a, True, new_ids=True) == masked(b, True, new_ids=True), data[:200]
    assert served == []
    keyed = request("POST", "/rooms", {**auth, "Idempotency-Key": "k1"}, b"{}")
    first = await exchange(edge.server.port, keyed)
    again = await exchange(edge.server.port, keyed)
    assert (first.status, first.body) == (again.status, again.body) == (201, first.body)
    assert served == []


async def test_access_lines_and_metrics_are_the_same(meeting_pair, make_token, caplog, monkeypatch):
    served = served_by_the_edge(monkeypatch)
    edge, plain = await meeting_pair()
    token = make_token("alice", user_id="u-edge")
    created = await exchange(edge.server.port, _create(token, b"{}"))
    code = json.loads(created.body)["code"]
    caplog.clear()
    requests = [
        _create(token, b'{"name": "a"}'),
        _create(token, b"[]"),
        _create(token, b'{"name": 1}'),
        request("GET", f"/rooms/code/{code}", {"X-Request-ID": "l-2"}),
        request("GET", "/rooms/code/abc-abc-abc", {"X-Request-ID": "l-3"}),
        request("GET", f"/rooms/code/{code}", {"X-Forwarded-For": "203.0.113.7"}),
    ]
    lines = []
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        for client in (edge, plain):
            caplog.clear()
            for data in requests:
                await exchange(client.server.port, data)
            lines.append(access_lines(caplog.records))
    a, b = lines
    new_ids = [i for i, line in enumerate(a) if line["request_id"] not in ("c-1", "l-2", "l-3")]
    for i in new_ids:  # a new id each: the rest is the same
        a[i]["request_id"] = b[i]["request_id"] = "-"
    assert a == b
    assert [line["status"] for line in a] == [201, 400, 400, 200, 404, 200]
    assert a[0]["user_id"] == "u-edge" and a[0]["remote"] == "127.0.0.1"
    assert len(served) == len(requests) + 1
    counts = [await counted(edge), await counted(plain)]
    # The first create, made on the edge's server only, is the one difference.
    first = 'http_requests_total{method="POST",route="/rooms",service="meeting",status="201"}'
    assert f"{first} 2.0" in counts[0] and f"{first} 1.0" in counts[1]
    a_counts = [line for line in counts[0] if 'route="/rooms"' not in line]
    b_counts = [line for line in counts[1] if 'route="/rooms"' not in line]
    assert a_counts == b_counts
    assert any('status="404"' in line for line in a_counts)


async def test_behind_a_trusted_proxy_the_client_is_the_same(
    meeting_pair, make_token, caplog, monkeypatch
):
    """X-Forwarded-For from a trusted peer names the client in the access line; one
    that is not a list of addresses is aiohttp's 400."""
    served = served_by_the_edge(monkeypatch)
    edge, plain = await meeting_pair(trusted_proxies="127.0.0.0/8")
    token = make_token("alice")
    requests = [
        _create(token, b"{}", **{"X-Forwarded-For": "203.0.113.9, 127.0.0.2"}),
        request("GET", "/rooms/code/abc-abc-abc", {"X-Forwarded-For": "198.51.100.1"}),
        _create(token, b"{}", **{"X-Forwarded-For": "not an address"}),
    ]
    lines, answers = [], []
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        for client in (edge, plain):
            caplog.clear()
            answers.append(
                [masked(await exchange(client.server.port, d), True, True) for d in requests]
            )
            lines.append(access_lines(caplog.records))
    assert answers[0] == answers[1]
    for line in (*lines[0], *lines[1]):
        line["request_id"] = "-"
    assert lines[0] == lines[1]
    assert [(line["status"], line["remote"]) for line in lines[0]] == [
        (201, "203.0.113.9"),
        (404, "198.51.100.1"),
        (400, "127.0.0.1"),
    ]
    assert served == ["POST /rooms", "GET /rooms/code/abc-abc-abc"]


async def test_a_fault_is_the_same_json_error(meeting_pair, make_token, caplog, monkeypatch):
    """A bug is the API's 500, the database out of reach its 503, as aiohttp answers."""
    served = served_by_the_edge(monkeypatch)
    edge, plain = await meeting_pair()
    token = make_token("alice")
    faults = [RuntimeError("a bug"), asyncpg.exceptions.CannotConnectNowError("starting")]
    in_context: list[str | None] = []  # the request id the log lines are written with
    for fault in faults:

        async def failing(item: Any, fault: Exception = fault) -> bytes:
            in_context.append(request_id_var.get())
            raise fault

        for client in (edge, plain):
            monkeypatch.setattr(client.server.app[NEW_ROOM_KEY], "submit", failing)
            monkeypatch.setattr(client.server.app[ROOM_BY_CODE_KEY], "submit", failing)
        for data in (_create(token, b"{}"), request("GET", "/rooms/code/a", {"X-Request-ID": "f"})):
            caplog.clear()
            a = await exchange(edge.server.port, data)
            logged_a = [(r.getMessage(), bool(r.exc_info)) for r in caplog.records]
            caplog.clear()
            b = await exchange(plain.server.port, data)
            logged_b = [(r.getMessage(), bool(r.exc_info)) for r in caplog.records]
            assert a.status == (500 if isinstance(fault, RuntimeError) else 503)
            assert masked(a) == masked(b)
            assert logged_a == logged_b
    assert len(served) == 4
    assert in_context == ["c-1", "c-1", "f", "f"] * 2


async def test_a_bug_past_the_answer_cuts_the_connection_and_is_logged(
    meeting_pair, caplog, monkeypatch
):
    """Too late for a status (or nothing to say one with): the client sees the
    connection close, the error is logged and counted as a 500."""
    import shared.service_edge

    edge, _ = await meeting_pair()

    def broken(*args: Any) -> bytes:
        raise RuntimeError("a bug")

    monkeypatch.setattr(shared.service_edge, "finish_head", broken)
    client = await RawClient.open(edge.server.port)
    client.send(request("GET", "/rooms/code/abc-abc-abc", {"X-Request-ID": "b"}))
    assert await client.closed()
    assert [r.getMessage() for r in caplog.records if r.exc_info] == ["unhandled error"]
    registry = edge.server.app[METRICS_KEY].registry
    labels = {"service": "meeting", "method": "GET", "route": "/rooms/code/{code}"}
    assert registry.get_sample_value("http_requests_total", {**labels, "status": "500"}) == 1


async def test_an_edge_route_must_be_the_router_s(aiohttp_client, database_url, jwks_json):
    """Its template, method and handler are checked against the router's when the app
    starts."""
    from meeting_service.routes import my_rooms, refusal_middleware

    settings = MeetingSettings(database_url=database_url, jwks=jwks_json)
    app = create_app(settings)
    wrong = EdgeRoute("POST", "/rooms", my_rooms, EDGE_ROUTES[0].function)
    serve_at_the_edge(app, settings, [*EDGE_ROUTES, wrong], [refusal_middleware])
    with pytest.raises(ValueError, match="POST /rooms"):
        await aiohttp_client(app)


async def test_pipelined_requests_keep_alive_and_a_hand_off_mid_connection(
    meeting_pair, make_token, monkeypatch
):
    served = served_by_the_edge(monkeypatch)
    edge, _ = await meeting_pair()
    token = make_token("alice")
    client = await RawClient.open(edge.server.port)
    client.send(_create(token, b'{"name": "one"}'))
    one = await client.answer()
    code = json.loads(one.body)["code"]
    client.send(
        request("GET", f"/rooms/code/{code}", {"X-Request-ID": "p1"})
        + _create(token, b'{"name": "two"}', **{"X-Request-ID": "p2"})
        + request("GET", "/healthz", {"X-Request-ID": "p3"})  # aiohttp's: the hand-off
        + _create(token, b'{"name": "three"}', **{"X-Request-ID": "p4"})
        + request("GET", f"/rooms/code/{code}", {"X-Request-ID": "p5"})
    )
    answers = [await client.answer() for _ in range(5)]
    assert [(a.status, a.header("X-Request-ID")) for a in answers] == [
        (200, "p1"),
        (201, "p2"),
        (200, "p3"),
        (201, "p4"),
        (200, "p5"),
    ]
    assert json.loads(answers[0].body)["code"] == code
    assert json.loads(answers[3].body)["name"] == "three"
    # The edge served what came before the hand-off; aiohttp the rest, on the same socket.
    assert served == ["POST /rooms", f"GET /rooms/code/{code}", "POST /rooms"]
    await client.close()


def _held(monkeypatch: pytest.MonkeyPatch, client: Any) -> tuple[asyncio.Event, asyncio.Event]:
    """The creates of `client`'s app wait for `release` once `entered` is set."""
    batcher = client.server.app[NEW_ROOM_KEY]
    submit = batcher.submit
    entered, release = asyncio.Event(), asyncio.Event()

    async def held(item: Any) -> bytes:
        entered.set()
        await release.wait()
        return await submit(item)

    monkeypatch.setattr(batcher, "submit", held)
    return entered, release


async def test_shutdown_answers_a_create_in_flight_then_closes(
    meeting_pair, make_token, db, monkeypatch
):
    served = served_by_the_edge(monkeypatch)
    told = called(monkeypatch, "close")
    edge, _ = await meeting_pair()
    token = make_token("alice")
    idle = await RawClient.open(edge.server.port)
    idle.send(request("GET", "/rooms/code/abc-abc-abc"))
    assert (await idle.answer()).status == 404
    entered, release = _held(monkeypatch, edge)
    busy = await RawClient.open(edge.server.port)
    busy.send(_create(token, b'{"name": "in flight"}'))
    await entered.wait()
    stopping = asyncio.create_task(edge.server.close())
    await told.wait()
    assert await idle.closed()
    release.set()
    answer = await busy.answer()
    assert (answer.status, answer.header("Connection")) == (201, "close")
    assert await busy.closed()
    await stopping
    assert served == ["GET /rooms/code/abc-abc-abc", "POST /rooms"]
    assert await db.fetchval("SELECT count(*) FROM meeting.rooms WHERE name = 'in flight'") == 1


async def test_a_client_that_hangs_up_mid_body_is_a_499_as_in_aiohttp(
    meeting_pair, make_token, caplog, monkeypatch
):
    served = served_by_the_edge(monkeypatch)
    statuses = recorded(monkeypatch)
    edge, plain = await meeting_pair()
    half = _create(make_token("alice"), b'{"name": "half"}')[:-4]
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        for client in (edge, plain):
            raw = await RawClient.open(client.server.port)
            raw.send(half)
            await raw.close()
            assert await statuses.get() == 499
    assert await counted(edge) == await counted(plain)
    assert [line["status"] for line in access_lines(caplog.records)] == [499, 499]
    assert served == []  # its body never came whole


async def test_a_client_that_hangs_up_after_its_body_does_not_cancel_the_create(
    meeting_pair, make_token, db, caplog, monkeypatch
):
    served = served_by_the_edge(monkeypatch)
    lost = called(monkeypatch, "connection_lost")
    edge, _ = await meeting_pair()
    entered, release = _held(monkeypatch, edge)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        client = await RawClient.open(edge.server.port)
        client.send(_create(make_token("alice"), b'{"name": "gone"}'))
        await entered.wait()
        (connection,) = edge.server.runner.server.fronts
        task = connection.task
        await client.close()
        await lost.wait()
        release.set()
        await task
    assert served == ["POST /rooms"]
    assert await db.fetchval("SELECT count(*) FROM meeting.rooms WHERE name = 'gone'") == 1
    assert [line["status"] for line in access_lines(caplog.records)] == [201]
    registry = edge.server.app[METRICS_KEY].registry
    labels = {"service": "meeting", "method": "POST", "route": "/rooms"}
    assert registry.get_sample_value("http_requests_total", {**labels, "status": "201"}) == 1
