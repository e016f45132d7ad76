import asyncio
import gzip
import hashlib
import os
import re
import socket

from tests.conftest import bearer

NOT_HEX = re.compile(r"[^0-9a-f]")


async def test_body_larger_than_one_chunk_streams_through_unchanged(gateway, echo, make_token):
    body = os.urandom(700 * 1024)
    r = await gateway.post("/api/upload?x=1&y=%20", data=body, headers=bearer(make_token()))
    assert r.status == 200
    seen = await r.json()
    assert seen["length"] == len(body)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()
    assert seen["path_qs"] == "/api/upload?x=1&y=%20"
    assert seen["method"] == "POST"


async def test_large_response_streams_back_intact(gateway, make_token):
    r = await gateway.get("/api/big", headers=bearer(make_token()))
    assert r.status == 200
    data = await r.read()
    expected = b"".join(bytes([i % 256]) * 65536 for i in range(48))
    assert data == expected


async def test_compressed_body_is_not_decoded_or_reencoded(
    gateway_factory, echo, make_token, aiohttp_client
):
    gateway = await gateway_factory(str(echo.server.make_url("")))
    async with gateway.session.get(
        gateway.make_url("/api/gzip"), headers=bearer(make_token()), auto_decompress=False
    ) as r:
        assert r.status == 200
        assert r.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await r.read()) == b"hello " * 1000


async def test_hop_by_hop_and_spoofed_identity_headers_are_stripped(gateway, make_token):
    headers = {
        **bearer(make_token()),
        "Connection": "keep-alive, X-Secret-Hop",
        "X-Secret-Hop": "1",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "X-User-Id": "admin",
        "X-Authenticated-User": "admin",
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Host": "evil.example",
        "X-Real-IP": "203.0.113.9",
        "Forwarded": "for=203.0.113.9",
        "X-Custom": "kept",
    }
    r = await gateway.get("/api/anything", headers=headers)
    assert r.status == 200
    seen = {k.lower(): v for k, v in (await r.json())["headers"].items()}
    for name in (
        "x-secret-hop",
        "keep-alive",
        "te",
        "proxy-authorization",
        "x-user-id",
        "x-authenticated-user",
        "x-real-ip",
        "forwarded",
    ):
        assert name not in seen, name
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == f"127.0.0.1:{gateway.port}"
    assert seen["x-custom"] == "kept"
    assert seen["authorization"] == headers["Authorization"]
    # The upstream's hop-by-hop headers do not reach the client either.
    assert "X-Upstream-Hop" not in r.headers
    assert r.headers["X-Upstream-End"] == "public"


async def test_request_id_is_passed_through(gateway, make_token):
    r = await gateway.get(
        "/api/x", headers={**bearer(make_token()), "X-Request-ID": "client-id-42"}
    )
    assert r.headers["X-Request-ID"] == "client-id-42"
    assert (await r.json())["headers"]["X-Request-ID"] == "client-id-42"


async def test_request_id_is_generated_when_missing_or_malformed(gateway, make_token):
    seen = set()
    for sent in ({}, {"X-Request-ID": "bad id with spaces\t"}, {}):
        r = await gateway.get("/api/x", headers={**bearer(make_token()), **sent})
        generated = r.headers["X-Request-ID"]
        assert len(generated) == 32 and not NOT_HEX.search(generated)
        assert (await r.json())["headers"]["X-Request-ID"] == generated
        seen.add(generated)
    assert len(seen) == 3


async def test_error_responses_carry_a_request_id(gateway):
    r = await gateway.get("/api/x", headers={"X-Request-ID": "abc"})
    assert r.status == 401
    assert r.headers["X-Request-ID"] == "abc"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_502_when_the_service_cannot_be_reached(gateway_factory, make_token):
    gateway = await gateway_factory(f"http://127.0.0.1:{_free_port()}")
    r = await gateway.get("/api/rooms", headers=bearer(make_token()))
    assert r.status == 502
    assert await r.json() == {"error": "chat service unavailable", "code": "upstream_unavailable"}
    r = await gateway.post("/rooms", json={}, headers=bearer(make_token()))
    assert r.status == 502
    assert await r.json() == {
        "error": "meeting service unavailable",
        "code": "upstream_unavailable",
    }


async def test_504_when_the_service_stalls(gateway_factory, echo, make_token):
    gateway = await gateway_factory(str(echo.server.make_url("")), upstream_timeout_s=0.3)
    r = await gateway.get("/api/stall", headers=bearer(make_token()))
    assert r.status == 504
    assert await r.json() == {"error": "chat service timed out", "code": "upstream_timeout"}
    # The gateway is not stuck: the next request is served.
    r = await gateway.get("/api/after", headers=bearer(make_token()))
    assert r.status == 200


async def test_413_on_a_declared_length_over_the_limit(gateway, echo, make_token):
    r = await gateway.post(
        "/api/upload", data=b"x" * (1024 * 1024 + 1), headers=bearer(make_token())
    )
    assert r.status == 413
    assert await r.json() == {"error": "request body too large", "code": "body_too_large"}
    assert echo.requests == []


async def test_413_on_a_chunked_body_over_the_limit(gateway, make_token):
    async def chunks():
        for _ in range(17):
            yield b"y" * 65536  # 1 MiB + 64 KiB, no Content-Length

    r = await gateway.post("/api/upload", data=chunks(), headers=bearer(make_token()))
    assert r.status == 413
    assert await r.json() == {"error": "request body too large", "code": "body_too_large"}


async def test_a_chunked_body_at_the_limit_passes(gateway, make_token):
    async def chunks():
        for _ in range(16):
            yield b"z" * 65536  # exactly 1 MiB

    r = await gateway.post("/api/upload", data=chunks(), headers=bearer(make_token()))
    assert r.status == 200
    assert (await r.json())["length"] == 1024 * 1024


async def test_recovers_when_a_stopped_service_comes_back(
    aiohttp_server, gateway_factory, make_token
):
    from tests.gateway.conftest import Echo

    port = _free_port()
    first = await aiohttp_server(Echo().app(), port=port)
    gateway = await gateway_factory(f"http://127.0.0.1:{port}")
    assert (await gateway.get("/api/a", headers=bearer(make_token()))).status == 200
    await first.close()
    r = await gateway.get("/api/a", headers=bearer(make_token()))
    assert r.status == 502
    assert await r.json() == {"error": "chat service unavailable", "code": "upstream_unavailable"}
    await aiohttp_server(Echo().app(), port=port)
    r = await gateway.get("/api/a", headers=bearer(make_token()))
    assert r.status == 200


async def test_unknown_path_is_a_json_404(gateway):
    r = await gateway.get("/nowhere")
    assert r.status == 404
    assert await r.json() == {"error": "not found", "code": "not_found"}
    r = await gateway.get("/roomsX")
    assert r.status == 404


async def test_proxied_routes_need_a_token_except_the_code_lookup(gateway, echo):
    r = await gateway.get("/api/rooms")
    assert r.status == 401
    assert await r.json() == {"error": "unauthorized", "code": "unauthorized"}
    r = await gateway.post("/rooms/code/abc-def-ghi/join")
    assert r.status == 401
    assert [seen["path_qs"] for seen in echo.requests] == []
    r = await gateway.get("/rooms/code/abc-def-ghi")
    assert r.status == 200
    assert (await r.json())["path_qs"] == "/rooms/code/abc-def-ghi"


async def test_guest_tokens_pass_the_gateway_for_the_services_to_judge(gateway, make_token):
    r = await gateway.post(
        "/rooms/code/abc-def-ghi/join", headers=bearer(make_token("g", role="guest"))
    )
    assert r.status == 200


async def test_websocket_frames_flow_both_ways(gateway, make_token):
    token = make_token()
    async with gateway.ws_connect(f"/api/ws?access_token={token}") as ws:
        await ws.send_str("hello")
        message = await ws.receive(timeout=5)
        assert message.data == "echo:hello"


async def test_many_concurrent_requests_share_the_pool(gateway, make_token):
    headers = bearer(make_token())
    responses = await asyncio.gather(
        *(gateway.get(f"/api/n{i}", headers=headers) for i in range(100))
    )
    assert [r.status for r in responses] == [200] * 100
    assert sorted([(await r.json())["path_qs"] for r in responses]) == sorted(
        f"/api/n{i}" for i in range(100)
    )


class HangUpOnReuse:
    """A raw HTTP/1.1 upstream: it answers the first request on each connection,
    keeping the connection open, and hangs up without a word on the second, as a
    service does whose idle timeout fired, or that restarted, just then."""

    def __init__(self) -> None:
        self.answered = 0
        self.hung_up = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            if not first:
                self.hung_up += 1
                writer.close()
                return
            first = False
            self.answered += 1
            body = b'{"ok": true}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()


async def test_a_stale_pooled_connection_is_retried_for_idempotent_requests(
    gateway_factory, make_token
):
    """aiohttp's client sends an idempotent request once more when a reused
    connection turns out dead; this pins that the proxy keeps that behaviour,
    and that a POST is never replayed."""
    upstream = HangUpOnReuse()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        gateway = await gateway_factory(f"http://127.0.0.1:{port}")
        headers = bearer(make_token())
        for _ in range(3):
            r = await gateway.get("/api/rooms", headers=headers)
            assert r.status == 200
            assert await r.json() == {"ok": True}
        assert upstream.hung_up == 2  # the second and third GETs met a dead connection
        # A request with a body is never sent twice: it may have been acted on.
        r = await gateway.post("/api/send_room_message", json={"room_id": 1}, headers=headers)
        assert r.status == 502
        assert await r.json() == {
            "error": "chat service unavailable",
            "code": "upstream_unavailable",
        }
    finally:
        server.close()
        await server.wait_closed()


async def test_a_small_response_leaves_in_one_write(gateway, make_token, monkeypatch):
    """Headers and body together: one write to the client's socket, not two, whether
    the edge (gateway.edge) or aiohttp's writer sends it."""
    from aiohttp import http_writer

    from gateway.edge import EdgeConnection

    port = gateway.server.port
    writes = []

    def counted(method):
        def write(self, data):
            transport = self._protocol.transport
            if transport is not None and transport.get_extra_info("sockname")[1] == port:
                writes.append(data)
            return method(self, data)

        return write

    monkeypatch.setattr(
        http_writer.StreamWriter, "_write", counted(http_writer.StreamWriter._write)
    )
    monkeypatch.setattr(
        http_writer.StreamWriter, "_writelines", counted(http_writer.StreamWriter._writelines)
    )
    edge_write = EdgeConnection.write

    def edge_counted(self, data):
        writes.append(data)
        return edge_write(self, data)

    monkeypatch.setattr(EdgeConnection, "write", edge_counted)
    r = await gateway.get("/api/x", headers=bearer(make_token()))
    body = await r.read()
    assert r.status == 200
    assert len(writes) == 1
    sent = b"".join(writes[0]) if isinstance(writes[0], tuple) else bytes(writes[0])
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n") and sent.endswith(body)
