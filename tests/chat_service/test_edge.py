"""The chat's edge (shared.service_edge, chat_service.edge): a `send_room_message`
without an Idempotency-Key is served by plain calls, byte for byte as the aiohttp
handler answers it, with the same access lines and metrics; everything else is
aiohttp's, on the same connection. (The connection's mechanics, shared with the
meeting's edge, are tested in tests/meeting_service/test_edge.py.)"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chat_service.app import create_app
from chat_service.settings import ChatSettings
from tests.chat_service.helpers import create_room
from tests.gateway.raw_http import RawClient, request
from tests.service_edge import access_lines, counted, exchange, masked, pair, served_by_the_edge

SEND = "/api/send_room_message"


@pytest.fixture
def chat_pair(chat_settings: ChatSettings, aiohttp_client: Any) -> Any:
    async def make(**overrides: Any) -> tuple[Any, Any]:
        def app() -> Any:
            return create_app(chat_settings.model_copy(update=overrides))

        return await pair(aiohttp_client, app)

    return make


def _send(token: str, body: bytes, **headers: str) -> bytes:
    return request(
        "POST", SEND, {"Authorization": f"Bearer {token}", "X-Request-ID": "s-1", **headers}, body
    )


def _body(room_id: Any, message: Any) -> bytes:
    return json.dumps({"room_id": room_id, "message": message}).encode()


async def test_sends_are_answered_byte_for_byte_as_aiohttp_does(chat_pair, make_token, monkeypatch):
    served = served_by_the_edge(monkeypatch)
    edge, plain = await chat_pair()
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(edge, {"Authorization": alice}, "General")
    bodies = [
        _body(room, "hello"),
        _body(room, "caf\u00e9 \u2615 \U0001f600"),
        _body(str(room), "a string id"),
        _body(room, " "),
        _body(room, "x" * 4001),
        _body(room, 5),
        _body(0, "zero"),
        _body(-1, "negative"),
        _body(2**63, "too big"),
        _body(room + 1000, "no such room"),
        json.dumps({"room_id": room}).encode(),
        b"",
        b"not json",
        b"[]",
        b"[" * 100_000,
        b'{"room_id": ' + str(room).encode() + b', "message": "\\u0000"}',
    ]
    requests = [_send(alice, body) for body in bodies]
    requests += [
        _send(bob, _body(room, "not a member")),  # 403
        _send(alice, _body(room, "closing"), **{"Connection": "close"}),
        request("POST", SEND, {"Authorization": alice, "X-Request-ID": "bare"}, _body(room, "b")),
        request("POST", SEND + "?x=1", {"Authorization": alice, "X-Request-ID": "q"}, b"{}"),
    ]
    for data in requests:
        a = await exchange(edge.server.port, data)
        b = await exchange(plain.server.port, data)
        assert masked(a, varying=True) == masked(b, varying=True), data[-200:]
        assert a.status < 500
    assert len(served) == len(requests)


async def test_what_the_chat_s_edge_does_not_take_is_aiohttp_s(chat_pair, make_token, monkeypatch):
    served = served_by_the_edge(monkeypatch)
    edge, plain = await chat_pair(max_body_bytes=64)
    alice = make_token("alice")
    room = await create_room(edge, {"Authorization": alice}, "General")
    auth = {"Authorization": f"Bearer {alice}", "X-Request-ID": "n-1"}
    body = _body(room, "hi")
    requests = [
        request("POST", SEND, {"X-Request-ID": "n-1"}, body),
        request("POST", SEND, {**auth, "Authorization": "Bearer x.y.z"}, body),
        request("POST", SEND, {**auth, "Authorization": make_token(role="guest")}, body),
        request("POST", SEND, {**auth, "Idempotency-Key": ""}, body),
        request("POST", SEND, {**auth, "Content-Encoding": "br"}, body),
        request("POST", SEND, auth, _body(room, "x" * 64)),  # 413
        request("GET", SEND, auth),  # 405
    ]
    for data in requests:
        a = await exchange(edge.server.port, data)
        b = await exchange(plain.server.port, data)
        assert masked(a, True, new_ids=True) == masked(b, True, new_ids=True), data[:200]
    assert served == []


async def test_access_lines_metrics_and_a_hand_off(chat_pair, make_token, caplog, monkeypatch):
    served = served_by_the_edge(monkeypatch)
    edge, plain = await chat_pair()
    alice = make_token("alice", user_id="u-alice")
    rooms = [
        await create_room(c, {"Authorization": alice}, f"R{i}") for i, c in enumerate((edge, plain))
    ]
    lines, answers = [], []
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        for client, room in zip((edge, plain), rooms, strict=True):
            caplog.clear()
            raw = await RawClient.open(client.server.port)
            raw.send(
                _send(alice, _body(room, "one"), **{"X-Request-ID": "p1"})
                + _send(alice, b"[]", **{"X-Request-ID": "p2"})
                + request("GET", "/healthz", {"X-Request-ID": "p3"})  # aiohttp's, from here
                + _send(alice, _body(room, "two"), **{"X-Request-ID": "p4"})
            )
            got = [await raw.answer() for _ in range(4)]
            await raw.close()
            answers.append([(a.status, a.header("X-Request-ID")) for a in got])
            lines.append(access_lines(caplog.records))
    assert answers[0] == answers[1] == [(201, "p1"), (400, "p2"), (200, "p3"), (201, "p4")]
    assert lines[0] == lines[1]
    assert [line["user_id"] for line in lines[0]] == ["u-alice", "u-alice", None, "u-alice"]
    assert served == [f"POST {SEND}", f"POST {SEND}"]
    assert await counted(edge) == await counted(plain)


HISTORY = "/api/get_room_messages"


def _history(token: str, query: str, **headers: str) -> bytes:
    target = f"{HISTORY}?{query}" if query else HISTORY
    return request(
        "GET", target, {"Authorization": f"Bearer {token}", "X-Request-ID": "h-1", **headers}
    )


async def _history_room(client: Any, token: str) -> tuple[int, int, int]:
    """A room of alice's with 6 messages (their first and last ids), and an empty one."""
    room = await create_room(client, {"Authorization": token}, "History")
    ids = []
    for n in range(6):
        async with client.post(
            SEND, json={"room_id": room, "message": f"m{n}"}, headers={"Authorization": token}
        ) as response:
            ids.append((await response.json())["message_id"])
    empty = await create_room(client, {"Authorization": token}, "Empty")
    return room, ids[0], empty


async def test_history_reads_are_answered_byte_for_byte_as_aiohttp_does(
    chat_pair, make_token, monkeypatch
):
    served = served_by_the_edge(monkeypatch)
    edge, plain = await chat_pair()
    alice, bob = make_token("alice"), make_token("bob")
    room, first, empty = await _history_room(edge, alice)
    served.clear()  # the sends that made it
    queries = [
        f"room_id={room}",
        f"room_id={room}&limit=2",
        f"limit=2&room_id={room}",
        f"room_id={room}&limit=100",
        f"room_id={room}&before={first + 3}&limit=2",
        f"room_id={room}&after={first}&limit=3",
        f"room_id={room}&after=0",
        f"room_id={room}&after={first + 5}",
        f"room_id={empty}",
        f"room_id={empty}&after=0",
        f"room_id={room + 1000}",  # 404
        f"room_id={room}&before=1&after=1",  # 400: one direction only
        f"room_id={room}&limit=0",
        f"room_id={room}&limit=101",
        f"room_id={room}&limit=-1",
        f"room_id={room}&limit=1.5",
        f"room_id={room}&before=0",
        f"room_id={room}&after=-1",
        f"room_id={room}&after=9223372036854775808",
        "room_id=0",
        "room_id=abc",
        "room_id=",
        f"room_id={room}&other=1",  # 400: no unknown fields
        "limit=5",  # 400: no room
        "",
    ]
    requests = [_history(alice, query) for query in queries]
    requests += [
        _history(bob, f"room_id={room}"),  # 403
        _history(alice, f"room_id={room}", Connection="close"),
        request("GET", f"{HISTORY}?room_id={room}", {"Authorization": alice, "X-Request-ID": "b"}),
    ]
    for _ in range(2):  # built, then from the cache
        for data in requests:
            a = await exchange(edge.server.port, data)
            b = await exchange(plain.server.port, data)
            assert masked(a) == masked(b), data
            assert a.status < 500
    assert len(served) == 2 * len(requests)
    assert served[0] == f"GET {HISTORY}"


async def test_history_queries_the_edge_cannot_read_exactly_are_aiohttp_s(
    chat_pair, make_token, monkeypatch
):
    served = served_by_the_edge(monkeypatch)
    edge, plain = await chat_pair()
    alice = make_token("alice")
    room, first, _ = await _history_room(edge, alice)
    served.clear()  # the sends that made it
    queries = [
        f"room_id=%3{str(room)[0]}{str(room)[1:]}",  # an escape
        f"room_id={room}&limit=%32",
        f"room_id={room}&room_id={room}",  # a name twice
        f"room_id={room}&limit=2&limit=3",
        f"room_id={room}&limit=+2",  # a plus: a space
        f"room_id={room};limit=2",
        f"room_id={room}&&limit=2",
        f"room_id={room}&",
        f"room_id={room}&limit",
        f"room_id={room}&=2",
        f"room_id={room}&limit==2",
        f"room_id={room}&limit=2?",
        f"room_id={room}&limit=(2)",
        f"room_id={room}&before={first + 2}&after=/",
        f"room_id={room}&l%69mit=2",
    ]
    requests = [_history(alice, query) for query in queries]
    requests += [
        request("GET", f"{HISTORY}?", {"Authorization": f"Bearer {alice}", "X-Request-ID": "e"}),
        request("GET", f"{HISTORY}?room_id={room}", {"X-Request-ID": "n-1"}),  # 401
        request("GET", f"{HISTORY}?room_id={room}", {"Authorization": make_token(role="guest")}),
        request("POST", f"{HISTORY}?room_id={room}", {"Authorization": alice}, b"{}"),  # 405
    ]
    for data in requests:
        a = await exchange(edge.server.port, data)
        b = await exchange(plain.server.port, data)
        assert masked(a, new_ids=True) == masked(b, new_ids=True), data
        assert a.status < 500
    assert served == []


async def test_history_access_lines_metrics_and_hand_offs(
    chat_pair, make_token, caplog, monkeypatch
):
    served = served_by_the_edge(monkeypatch)
    edge, plain = await chat_pair()
    alice = make_token("alice", user_id="u-alice")
    room, first, _ = await _history_room(edge, alice)
    served.clear()  # the sends that made it
    lines, answers = [], []
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        for client in (edge, plain):
            caplog.clear()
            raw = await RawClient.open(client.server.port)
            raw.send(
                _history(alice, f"room_id={room}&limit=2", **{"X-Request-ID": "p1"})
                + _history(alice, "room_id=x", **{"X-Request-ID": "p2"})
                + _history(alice, f"room_id={room}&limit=%32", **{"X-Request-ID": "p3"})
                + _history(alice, f"room_id={room + 1000}", **{"X-Request-ID": "p4"})
                + _history(alice, f"room_id={room}&after={first}", **{"X-Request-ID": "p5"})
            )
            got = [await raw.answer() for _ in range(5)]
            await raw.close()
            answers.append([(a.status, a.header("X-Request-ID"), a.body) for a in got])
            lines.append(access_lines(caplog.records))
    assert answers[0] == answers[1]
    assert [status for status, _, _ in answers[0]] == [200, 400, 200, 404, 200]
    assert answers[0][0][2] == answers[0][2][2]  # limit=%32 is limit=2
    assert lines[0] == lines[1]
    assert [line["path"] for line in lines[0]] == [HISTORY] * 5
    assert [line["user_id"] for line in lines[0]] == ["u-alice"] * 5
    # The edge's until the escaped one; aiohttp's from there (the rest, pipelined,
    # already in its buffer).
    assert served == [f"GET {HISTORY}"] * 2
    # The history's counts (the room was made through the edge's server alone).
    assert [line for line in await counted(edge) if HISTORY in line] == [
        line for line in await counted(plain) if HISTORY in line
    ]
