"""Every process computes the client's address the same way (shared.forwarded): a
service that trusts the gateway logs the client the gateway vouched for."""

from __future__ import annotations

import logging

from chat_service.app import create_app as create_chat
from chat_service.settings import ChatSettings
from gateway.app import create_app as create_gateway
from shared.logs import AccessLogger
from tests.conftest import bearer, gateway_settings_for


async def test_a_service_behind_the_gateway_logs_the_client_address(
    aiohttp_server, aiohttp_client, database_url, jwks_json, signing_key, make_token, caplog
):
    # The service trusts the gateway and the proxies the gateway trusts (README).
    chat_settings = ChatSettings(
        database_url=database_url,
        jwks=jwks_json,
        bcrypt_rounds=4,
        trusted_proxies="127.0.0.1, 10.0.0.0/8",
    )
    chat = await aiohttp_server(create_chat(chat_settings), access_log_class=AccessLogger)
    url = str(chat.make_url(""))
    gateway = await aiohttp_client(
        create_gateway(
            gateway_settings_for(
                database_url,
                signing_key,
                chat_url=url,
                meeting_url=url,
                trusted_proxies="127.0.0.1/32, 10.0.0.0/8",
            )
        )
    )
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        # A client behind a load balancer (10.1.1.1) in front of the gateway.
        r = await gateway.get(
            "/api/rooms",
            headers={**bearer(make_token()), "X-Forwarded-For": "6.6.6.6, 203.0.113.7, 10.1.1.1"},
        )
        assert r.status == 200
    # The service's line (the gateway's test server logs in aiohttp's own format).
    remotes = [r.remote for r in caplog.records if hasattr(r, "remote")]
    assert remotes == ["203.0.113.7"]


async def test_a_service_that_trusts_no_one_logs_its_peer(
    aiohttp_server, aiohttp_client, database_url, jwks_json, make_token, caplog
):
    chat_settings = ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4)
    chat = await aiohttp_server(create_chat(chat_settings), access_log_class=AccessLogger)
    client = await aiohttp_client(chat)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        r = await client.get(
            "/api/rooms", headers={**bearer(make_token()), "X-Forwarded-For": "203.0.113.7"}
        )
        assert r.status == 200
    assert [r.remote for r in caplog.records if r.name == "aiohttp.access"] == ["127.0.0.1"]
