"""What aiohttp's parser refuses, before any middleware runs, is still the API's JSON
with a request id; and it is not logged as an error quoting the request."""

import asyncio
import json
import logging

import pytest

SECRET = "s3cret-header-value"


async def raw_exchange(server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, headers and body of the answer."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await reader.read()  # the server closes the connection after a refusal
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def request(head: str, *headers: str) -> bytes:
    lines = [head, "Host: localhost", *headers, "", ""]
    return "\r\n".join(lines).encode()


TOO_LARGE = (431, ("request header fields too large", "header_fields_too_large"))
TOO_LONG = (414, ("request URI too long", "uri_too_long"))
UNENDED = 20000  # a line that never ends: refused once it passes the limit, not buffered on
CASES = [
    pytest.param(raw, *answer, id=name)
    for name, raw, answer in [
        (
            "header-over-the-limit",
            request("GET /rooms HTTP/1.1", f"X-Long: {SECRET}{'a' * 9000}"),
            TOO_LARGE,
        ),
        (
            "header-like-a-path-over-the-limit",
            request("GET /rooms HTTP/1.1", f"X-Path: /{SECRET}{'a' * 9000}"),
            TOO_LARGE,
        ),
        (
            "header-over-the-limit-unended",
            f"GET /rooms HTTP/1.1\r\nHost: h\r\nX-Long: {SECRET}{'a' * UNENDED}".encode(),
            TOO_LARGE,
        ),
        (
            "too-many-headers",
            request("GET /rooms HTTP/1.1", *(f"X-H{i}: {SECRET}" for i in range(200))),
            TOO_LARGE,
        ),
        (
            "request-target-over-the-limit",
            request(f"GET /rooms?q={SECRET}{'a' * 9000} HTTP/1.1"),
            TOO_LONG,
        ),
        (
            "absolute-target-over-the-limit",
            f"GET http://h/rooms?q={SECRET}{'a' * 9000} HTTP/1.1\r\n\r\n".encode(),
            TOO_LONG,
        ),
        (
            "request-target-over-the-limit-unended",
            f"GET /rooms?q={SECRET}{'a' * UNENDED}".encode(),
            TOO_LONG,
        ),
        (
            "unknown-method",
            request("FROB /rooms HTTP/1.1", f"X-Secret: {SECRET}"),
            (501, ("method not implemented", "method_not_implemented")),
        ),
        (
            "malformed-header",
            request("GET /rooms HTTP/1.1", f"X-Bad\x01Name: {SECRET}"),
            (400, ("bad request", "bad_request")),
        ),
    ]
]


@pytest.fixture(params=["gateway", "gateway-without-edge", "chat", "meeting"])
async def server(request, gateway_stack, aiohttp_server):
    if request.param == "gateway-without-edge":
        from gateway.app import create_app
        from shared.server import FRONT_KEY

        app = create_app(gateway_stack.gateway_settings)
        del app[FRONT_KEY]  # aiohttp alone (gateway.edge hands such heads to it)
        return await aiohttp_server(app)
    return {
        "gateway": gateway_stack.client.server,
        "chat": gateway_stack.chat,
        "meeting": gateway_stack.meeting,
    }[request.param]


@pytest.mark.parametrize(("raw", "status", "message"), CASES)
async def test_a_request_the_parser_refuses_gets_json_with_a_request_id(
    server, caplog, raw, status, message
):
    caplog.set_level(logging.DEBUG)
    got_status, headers, body = await raw_exchange(server, raw)
    assert got_status == status
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    assert answer == {
        "error": message[0],
        "code": message[1],
        "request_id": headers["x-request-id"],
    }
    assert len(answer["request_id"]) == 32
    # The client's mistake is no error of ours, and the log never quotes its bytes.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]
    assert SECRET not in caplog.text


async def test_a_method_the_parser_knows_but_the_route_does_not_is_405(server):
    status, headers, body = await raw_exchange(
        server, request("PROPFIND /healthz HTTP/1.1", "Connection: close")
    )
    assert status == 405
    assert json.loads(body) == {"error": "method not allowed", "code": "method_not_allowed"}
    assert headers["allow"] == "GET,HEAD"
    assert headers["x-request-id"]


async def _held_until_closed(server, head: bytes) -> bytes:
    """Open a connection, send part of a request head, and read until the server
    closes it; what it sent before closing."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize("process", ["gateway", "chat"])
async def test_a_slowloris_is_closed_by_the_server(
    aiohttp_client, aiohttp_server, database_url, signing_key, jwks_json, process
):
    from chat_service.app import create_app as create_chat
    from chat_service.settings import ChatSettings
    from gateway.app import create_app as create_gateway
    from tests.conftest import gateway_settings_for

    if process == "gateway":
        app = create_gateway(gateway_settings_for(database_url, signing_key, header_timeout_s=1))
    else:
        app = create_chat(
            ChatSettings(database_url=database_url, jwks=jwks_json, header_timeout_s=1)
        )
    server = await aiohttp_server(app)
    heads = [b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n", b""]
    # 200 connections that never finish their request head, and some that send nothing.
    answers = await asyncio.wait_for(
        asyncio.gather(*(_held_until_closed(server, heads[i % 10 == 0]) for i in range(200))),
        timeout=60,
    )
    assert answers == [b""] * 200  # closed by the server, with nothing to say
    # The server still answers whoever sends a whole request.
    client = await aiohttp_client(server)
    assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize(
    ("service", "target", "body"),
    [("chat", "/api/send_room_message", b"x" * 64), ("meeting", "/rooms", b"x" * 64)],
)
async def test_a_body_its_content_encoding_cannot_decode_is_a_400_and_no_error(
    gateway_stack, make_token, caplog, service, target, body
):
    """aiohttp reads the rest of such a body after the handler's 400, and logged what
    it then raised as an unhandled exception, with a traceback."""
    caplog.set_level(logging.DEBUG)
    server = {"chat": gateway_stack.chat, "meeting": gateway_stack.meeting}[service]
    raw = request(
        f"POST {target} HTTP/1.1",
        f"Authorization: Bearer {make_token('alice')}",
        "Content-Type: application/json",
        "Content-Encoding: gzip",
        f"Content-Length: {len(body)}",
    )
    status, _, answer = await raw_exchange(server, raw + body)
    assert status == 400
    assert json.loads(answer) == {"error": "bad request", "code": "bad_request"}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]
