"""The WebSocket relay: sockets never starve HTTP of upstream connections, and only
legal close codes (RFC 6455 §7.4.1) go on the wire, either way."""

from __future__ import annotations

import asyncio
import base64
import os
from contextlib import AsyncExitStack

import aiohttp

from tests.conftest import bearer

TIMEOUT_S = 10  # an upper bound, not a pause


async def test_more_sockets_than_the_pool_holds_and_http_still_answers(
    gateway_factory, echo, make_token
):
    gateway = await gateway_factory(str(echo.server.make_url("")), upstream_pool_size=2)
    token = make_token()
    async with AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(gateway.ws_connect(f"/api/ws?access_token={token}"))
            for _ in range(5)
        ]
        for n, ws in enumerate(sockets):
            await ws.send_str(str(n))
            assert (await ws.receive(timeout=TIMEOUT_S)).data == f"echo:{n}"
        async with asyncio.timeout(TIMEOUT_S):
            responses = await asyncio.gather(
                *(gateway.get(f"/api/n{i}", headers=bearer(token)) for i in range(6))
            )
            assert [r.status for r in responses] == [200] * 6
            ready = await gateway.get("/readyz")
            assert ready.status == 200


async def test_a_request_that_gets_no_pooled_connection_is_a_503_in_bounded_time(
    gateway_factory, echo, make_token
):
    gateway = await gateway_factory(
        str(echo.server.make_url("")), upstream_pool_size=1, upstream_pool_wait_s=0.2
    )
    headers = bearer(make_token())
    stalled = asyncio.ensure_future(gateway.get("/api/stall", headers=headers))
    # Once the stalled request reached the service, the pool is full.
    await asyncio.wait_for(echo.stalling.wait(), TIMEOUT_S)
    async with asyncio.timeout(TIMEOUT_S):
        r = await gateway.get("/api/other", headers=headers)
    assert r.status == 503
    assert r.headers["Retry-After"] == "1"
    assert await r.json() == {"error": "chat service busy", "code": "upstream_busy"}
    echo.release.set()
    assert (await stalled).status == 200
    # Free again: the next request goes through.
    assert (await gateway.get("/api/other", headers=headers)).status == 200


# ----- close codes, with a raw client that sends exactly the frames a browser does -----


async def raw_websocket(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    head = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(head.encode())
    answer = await reader.readuntil(b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return reader, writer


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(length)


CLOSE = 0x8
TEXT = 0x1


async def test_an_empty_close_from_the_client_reaches_the_service_as_a_normal_close(
    gateway, echo, make_token
):
    reader, writer = await raw_websocket(gateway.port, f"/api/ws?access_token={make_token()}")
    try:
        writer.write(client_frame(TEXT, b"hi"))
        assert await server_frame(reader) == (TEXT, b"echo:hi")
        # What a browser's ws.close() sends: a close frame with no status code.
        writer.write(client_frame(CLOSE))
        async with asyncio.timeout(TIMEOUT_S):
            opcode, payload = await server_frame(reader)
            upstream_got = await echo.closes.get()
    finally:
        writer.close()
    assert upstream_got == 1000
    assert opcode == CLOSE
    # The reply is an empty close or a 1000: never 0 or 1005.
    assert payload in (b"", (1000).to_bytes(2, "big"))


async def test_a_service_that_drops_the_connection_is_a_1011_not_a_1006(gateway, make_token):
    async with gateway.ws_connect(f"/api/ws-drop?access_token={make_token()}") as ws:
        await ws.send_str("die")
        closing = await ws.receive(timeout=TIMEOUT_S)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (1011, "upstream connection lost")


async def test_a_client_that_vanishes_is_a_1001_to_the_service(gateway, echo, make_token):
    reader, writer = await raw_websocket(gateway.port, f"/api/ws?access_token={make_token()}")
    writer.write(client_frame(TEXT, b"hi"))
    assert await server_frame(reader) == (TEXT, b"echo:hi")
    writer.transport.abort()  # no close frame: the tab was killed
    async with asyncio.timeout(TIMEOUT_S):
        assert await echo.closes.get() == 1001
