"""A service that cannot fetch the gateway's public keys answers 503, not 401:
clients log their users out on a 401."""

import socket

import pytest
from aiohttp import web

from gateway.keys import SigningKey, TokenIssuer
from tests.conftest import AUDIENCE, ISSUER, bearer


class KeysEndpoint:
    """The gateway's /.well-known/jwks.json, which can be made to fail."""

    def __init__(self, jwks: dict) -> None:
        self.jwks = jwks
        self.up = False

    async def handler(self, request: web.Request) -> web.Response:
        if not self.up:
            return web.json_response({"error": "service unavailable"}, status=503)
        return web.json_response(self.jwks)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def chat_with_keys_at(aiohttp_client, database_url, jwks_url):
    from chat_service.app import create_app
    from chat_service.settings import ChatSettings

    settings = ChatSettings(
        database_url=database_url, jwks_url=jwks_url, jwks_refresh_min_interval_s=0
    )
    return await aiohttp_client(create_app(settings))


async def test_keys_out_of_reach_are_a_503_then_the_token_works(
    aiohttp_client, aiohttp_server, database_url, signing_key, make_token
):
    keys = KeysEndpoint(signing_key.jwks())
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", keys.handler)
    keys_server = await aiohttp_server(app)
    chat = await chat_with_keys_at(
        aiohttp_client, database_url, str(keys_server.make_url("/.well-known/jwks.json"))
    )
    token = make_token("alice")

    r = await chat.get("/api/rooms", headers=bearer(token))
    assert r.status == 503
    assert await r.json() == {
        "error": "service unavailable",
        "code": "service_unavailable",
        "request_id": r.headers["X-Request-ID"],
    }
    assert r.headers["Retry-After"] == "1"

    keys.up = True
    r = await chat.get("/api/rooms", headers=bearer(token))
    assert r.status == 200
    # With the keys in hand, a token signed by a key the gateway never published is a 401.
    stranger = TokenIssuer(SigningKey.generate(), issuer=ISSUER, audience=AUDIENCE)
    forged = stranger.access_token(
        subject="u_alice", username="alice", name="alice", picture=None, role="user", ttl_s=60
    )
    r = await chat.get("/api/rooms", headers=bearer(forged))
    assert r.status == 401
    assert (await r.json())["error"] == "unauthorized"


@pytest.mark.parametrize("path", ["/api/rooms", "/api/user_rooms"])
async def test_keys_at_a_closed_port_are_a_503(aiohttp_client, database_url, make_token, path):
    chat = await chat_with_keys_at(
        aiohttp_client,
        database_url,
        f"http://127.0.0.1:{closed_port()}/.well-known/jwks.json",
    )
    r = await chat.get(path, headers=bearer(make_token("alice")))
    assert r.status == 503
    assert (await r.json())["error"] == "service unavailable"
