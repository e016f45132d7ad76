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
