"""The edge (gateway.edge) answers byte for byte as the aiohttp route does: the same
requests sent to a gateway with its edge and to one without (aiohttp only), in front
of the same service, give the same answers, the same heads upstream, the same
metrics and the same access lines."""

from __future__ import annotations

import logging
import re
import socket
from typing import Any

from tests.gateway.raw_http import Answer, RawClient, request

DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _exchange(port: int, data: bytes, *, head: bool = False) -> Answer:
    client = await RawClient.open(port)
    client.head_only = head
    try:
        client.send(data)
        return await client.answer()
    finally:
        await client.close()


def relayed_by_the_edge(monkeypatch: Any) -> list[str]:
    """The paths of the requests the edge relays itself from now on."""
    import gateway.edge

    paths: list[str] = []
    relay = gateway.edge.relay

    def counted(connection: Any, request: Any) -> Any:
        paths.append(request.path)
        return relay(connection, request)

    monkeypatch.setattr(gateway.edge, "relay", counted)
    return paths


def _same(a: Answer, b: Answer) -> None:
    assert DATE.sub(b"\r\nDate: -\r\n", a.raw) == DATE.sub(b"\r\nDate: -\r\n", b.raw)


async def test_answers_and_heads_upstream_are_the_same_bytes(
    gateway_pair, echo, make_token, monkeypatch
):
    relayed = relayed_by_the_edge(monkeypatch)
    edge, plain = await gateway_pair(str(echo.server.make_url("")))
    token = {"Authorization": f"Bearer {make_token()}", "X-Request-ID": "same-1"}
    requests = [
        request("GET", "/api/x?a=1&b=%20", token),
        request("GET", "/api/x", {**token, "Connection": "keep-alive, X-Hop", "X-Hop": "1"}),
        request("POST", "/api/y", {**token, "Content-Type": "application/json"}, b'{"a":1}'),
        request("PUT", "/rooms/r1", token),
        b"POST /api/none HTTP/1.1\r\nHost: h\r\nX-Request-ID: same-2\r\nAuthorization: Bearer "
        + make_token().encode()
        + b"\r\n\r\n",
        request("DELETE", "/rooms", {**token, "X-Custom": "kept  "}),
        request("GET", "/api/x?status=204", token),
        request("GET", "/api/x?status=304", token),
        request("GET", "/api/x?status=426", token),
        request("GET", "/api/x?status=404", token),
        request("GET", "/rooms/code/abc-def-ghi", {"X-Request-ID": "bad id!"}),
        request("GET", "/api/x", {**token, "Connection": "close"}),
        request("GET", "/api/x", {**token, "X-Forwarded-For": "203.0.113.9"}),
    ]
    for data in requests:
        echo.requests.clear()
        a = await _exchange(edge.server.port, data)
        seen_a = echo.requests[:]
        b = await _exchange(plain.server.port, data)
        seen_b = echo.requests[1:] if seen_a else echo.requests[:]
        if b"bad id!" in data:  # a new id each: the rest is the same
            a.raw = a.raw.replace(a.header("X-Request-ID").encode(), b"-")
            b.raw = b.raw.replace(b.header("X-Request-ID").encode(), b"-")
            for seen in (*seen_a, *seen_b):
                seen["headers"]["X-Request-ID"] = "-"
        _same(a, b)
        assert seen_a == seen_b
    head = request("HEAD", "/api/x", token)
    a = await _exchange(edge.server.port, head, head=True)
    _same(a, await _exchange(plain.server.port, head, head=True))
    assert len(relayed) == len(requests) + 1  # all of them, by the edge


async def test_a_streamed_answer_is_the_same(gateway_pair, echo, make_token, monkeypatch):
    relayed = relayed_by_the_edge(monkeypatch)
    edge, plain = await gateway_pair(str(echo.server.make_url("")))
    data = request("GET", "/api/big", {"Authorization": make_token(), "X-Request-ID": "big"})
    a = await _exchange(edge.server.port, data)
    b = await _exchange(plain.server.port, data)
    assert [h for h in a.headers if h[0] != "Date"] == [h for h in b.headers if h[0] != "Date"]
    assert relayed == ["/api/big"]
    assert a.header("Transfer-Encoding") == "chunked"
    assert a.body == b.body == b"".join(bytes([i % 256]) * 65536 for i in range(48))


async def test_errors_the_gateway_makes_are_the_same(
    gateway_pair, echo, make_token, caplog, monkeypatch
):
    relayed = relayed_by_the_edge(monkeypatch)
    token = {"Authorization": f"Bearer {make_token()}", "X-Request-ID": "err-1"}
    gone = f"http://127.0.0.1:{_free_port()}"
    edge, plain = await gateway_pair(gone)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        a = await _exchange(edge.server.port, request("GET", "/api/x", token))
        b = await _exchange(plain.server.port, request("GET", "/api/x", token))
    assert a.status == 502
    _same(a, b)
    slow, slow_plain = await gateway_pair(
        str(echo.server.make_url("")),
        upstream_timeout_s=0.2,
    )
    a = await _exchange(slow.server.port, request("GET", "/api/stall", token))
    b = await _exchange(slow_plain.server.port, request("GET", "/api/stall", token))
    assert a.status == 504
    _same(a, b)
    for client in (edge, plain, slow, slow_plain):
        text = await (await client.get("/metrics")).text()
        counted = sorted(
            line
            for line in text.splitlines()
            if line.startswith(("http_requests_total{", "gateway_upstream_errors_total{"))
            and "/metrics" not in line
        )
        client.counted = counted
    assert edge.counted == plain.counted
    assert (
        'http_requests_total{method="GET",route="/api/{tail}",service="chat",status="502"} 1.0'
        in edge.counted
    )
    assert slow.counted == slow_plain.counted
    assert relayed == ["/api/x", "/api/stall"]
    lines = [
        re.sub(r"\[[^]]*\]", "[-]", r.getMessage())
        for r in caplog.records
        if r.name == "aiohttp.access"
    ]
    assert lines[0] == lines[1]
    assert lines[0].startswith('127.0.0.1 [-] "GET /api/x HTTP/1.1" 502 ')


async def test_a_busy_pool_s_503_is_the_same(gateway_pair, echo, make_token, monkeypatch):
    relayed = relayed_by_the_edge(monkeypatch)
    edge, plain = await gateway_pair(
        str(echo.server.make_url("")),
        upstream_pool_size=1,
        upstream_pool_wait_s=0.05,
    )
    token = {"Authorization": make_token(), "X-Request-ID": "busy"}
    answers = []
    for gateway in (edge, plain):
        echo.stalling.clear()
        holder = await RawClient.open(gateway.server.port)
        holder.send(request("GET", "/api/stall", token))
        await echo.stalling.wait()
        answers.append(await _exchange(gateway.server.port, request("GET", "/api/x", token)))
        echo.release.set()
        assert (await holder.answer()).status == 200
        echo.release.clear()
        await holder.close()
    a, b = answers
    assert (a.status, a.header("Retry-After")) == (503, "1")
    _same(a, b)
    assert relayed == ["/api/stall", "/api/x"]


async def test_with_cors_origins_listed_the_answers_are_the_same(
    gateway_pair, echo, make_token, monkeypatch
):
    relayed = relayed_by_the_edge(monkeypatch)
    edge, plain = await gateway_pair(
        str(echo.server.make_url("")),
        cors_allowed_origins=("https://app.example",),
    )
    token = {"Authorization": make_token(), "X-Request-ID": "cors"}
    for headers in (token, {**token, "Origin": "https://app.example"}):
        data = request("GET", "/api/x", headers)
        _same(await _exchange(edge.server.port, data), await _exchange(plain.server.port, data))
    assert relayed == ["/api/x"]  # the one without Origin; the other was aiohttp's
