"""The client's address behind trusted proxies: the rightmost X-Forwarded-For entry
that is not a trusted proxy. The proxy's own X-Forwarded-For, the access log and the
login limit all use it; nothing a client writes further left is believed."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from gateway.app import create_app
from shared.forwarded import resolve_chain
from shared.logs import AccessLogger
from shared.settings import CommonSettings
from tests.conftest import bearer, gateway_settings_for

LOOPBACK = "127.0.0.1/32"


async def seen_forwarded_for(gateway, token, headers) -> str:
    r = await gateway.get("/api/anything", headers=[*bearer(token).items(), *headers])
    assert r.status == 200
    seen = {k.lower(): v for k, v in (await r.json())["headers"].items()}
    return seen["x-forwarded-for"]


async def fail_login(gateway, name, forwarded_for):
    r = await gateway.post(
        "/auth/login",
        json={"username": name, "password": "wrong password"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return r.status


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8"])
async def test_an_untrusted_peer_is_the_client_whatever_it_writes(
    gateway_factory, echo, make_token, trusted
):
    gateway = await gateway_factory(
        str(echo.server.make_url("")), trusted_proxies=trusted, login_max_failures_per_address=3
    )
    spoofed = [("X-Forwarded-For", "203.0.113.9, 10.0.0.1")]
    assert await seen_forwarded_for(gateway, make_token(), spoofed) == "127.0.0.1"
    # Each attempt claims another address; all are the peer's.
    for i in range(3):
        assert await fail_login(gateway, f"u{i}", f"198.51.100.{i}") == 401
    assert await fail_login(gateway, "u9", "198.51.100.99") == 429


async def test_behind_a_trusted_proxy_the_rightmost_untrusted_entry_is_the_client(
    gateway_factory, echo, make_token
):
    gateway = await gateway_factory(str(echo.server.make_url("")), trusted_proxies=LOOPBACK)
    token = make_token()
    # The client wrote "6.6.6.6"; the proxy appended the address it saw.
    headers = [("X-Forwarded-For", "6.6.6.6, 203.0.113.7")]
    assert await seen_forwarded_for(gateway, token, headers) == "203.0.113.7, 127.0.0.1"
    # Several header lines are one list, in order.
    headers = [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.7")]
    assert await seen_forwarded_for(gateway, token, headers) == "203.0.113.7, 127.0.0.1"
    # No header: the trusted peer is the client.
    assert await seen_forwarded_for(gateway, token, []) == "127.0.0.1"
    # IPv6, and IPv4 written as an IPv4-mapped IPv6 address.
    headers = [("X-Forwarded-For", "2001:db8::1")]
    assert await seen_forwarded_for(gateway, token, headers) == "2001:db8::1, 127.0.0.1"
    headers = [("X-Forwarded-For", "::ffff:203.0.113.7")]
    assert await seen_forwarded_for(gateway, token, headers) == "203.0.113.7, 127.0.0.1"


async def test_a_chain_of_trusted_proxies_is_walked_and_passed_on(
    gateway_factory, echo, make_token
):
    gateway = await gateway_factory(
        str(echo.server.make_url("")), trusted_proxies=f"{LOOPBACK}, 10.0.0.0/8"
    )
    token = make_token()
    headers = [("X-Forwarded-For", "1.1.1.1, 198.51.100.1, 10.1.2.3")]
    assert await seen_forwarded_for(gateway, token, headers) == "198.51.100.1, 10.1.2.3, 127.0.0.1"
    # Every entry a trusted proxy: the leftmost is as far as anyone vouches for.
    headers = [("X-Forwarded-For", "10.0.0.1, 10.0.0.2")]
    assert await seen_forwarded_for(gateway, token, headers) == "10.0.0.1, 10.0.0.2, 127.0.0.1"


async def test_the_login_limit_counts_the_real_client_behind_a_trusted_proxy(gateway_factory, echo):
    gateway = await gateway_factory(
        str(echo.server.make_url("")),
        trusted_proxies=LOOPBACK,
        login_max_failures_per_address=3,
    )
    # One client rotating what it writes on the left is still one client.
    for i in range(3):
        assert await fail_login(gateway, f"u{i}", f"192.0.2.{i}, 203.0.113.7") == 401
    assert await fail_login(gateway, "u8", "192.0.2.200, 203.0.113.7") == 429
    assert await fail_login(gateway, "u9", "203.0.113.7") == 429
    # Another client behind the same proxy has its own budget.
    assert await fail_login(gateway, "u9", "198.51.100.2") == 401


async def test_an_entry_that_is_not_an_address_is_a_400_when_it_is_reached(
    gateway_factory, echo, make_token
):
    gateway = await gateway_factory(str(echo.server.make_url("")), trusted_proxies=LOOPBACK)
    r = await gateway.get(
        "/api/anything", headers={**bearer(make_token()), "X-Forwarded-For": "unknown"}
    )
    assert r.status == 400
    assert (await r.json())["error"] == "invalid X-Forwarded-For header"
    assert r.headers["X-Request-ID"]
    assert echo.requests == []
    # Left of the client it is never read.
    headers = [("X-Forwarded-For", "junk, 203.0.113.7")]
    assert await seen_forwarded_for(gateway, make_token(), headers) == "203.0.113.7, 127.0.0.1"


async def test_the_access_log_records_the_client_address(
    aiohttp_server, aiohttp_client, database_url, signing_key, echo, caplog
):
    url = str(echo.server.make_url(""))
    settings = gateway_settings_for(
        database_url, signing_key, chat_url=url, meeting_url=url, trusted_proxies=LOOPBACK
    )
    server = await aiohttp_server(create_app(settings), access_log_class=AccessLogger)
    client = await aiohttp_client(server)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        r = await client.get("/healthz", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
        assert r.status == 200
        r = await client.get("/healthz")
        assert r.status == 200
    lines = [record for record in caplog.records if record.name == "aiohttp.access"]
    assert [(line.path, line.remote) for line in lines] == [
        ("/healthz", "203.0.113.7"),
        ("/healthz", "127.0.0.1"),
    ]


def test_trusted_proxies_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", " 10.0.0.0/8, 192.0.2.1 ,::1")
    assert [str(n) for n in CommonSettings().trusted_proxies] == [
        "10.0.0.0/8",
        "192.0.2.1/32",
        "::1/128",
    ]
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.1/8")  # host bits set: a typo
    with pytest.raises(ValidationError):
        CommonSettings()
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    assert CommonSettings().trusted_proxies == ()


def test_the_old_trust_forwarded_for_setting_is_refused(monkeypatch):
    from gateway.settings import GatewaySettings

    monkeypatch.setenv("TRUST_FORWARDED_FOR", "true")
    with pytest.raises(ValidationError, match="TRUSTED_PROXIES"):
        GatewaySettings()


def test_resolve_chain_only_believes_trusted_peers():
    trusted = CommonSettings(trusted_proxies="10.0.0.0/8").trusted_proxies
    assert resolve_chain("203.0.113.1", ["1.2.3.4"], trusted) is None
    assert resolve_chain("10.0.0.5", [], trusted) is None
    assert resolve_chain("10.0.0.5", ["1.2.3.4, 5.6.7.8"], trusted) == ("5.6.7.8", "10.0.0.5")
    assert resolve_chain("::ffff:10.0.0.5", ["5.6.7.8"], trusted) == ("5.6.7.8", "10.0.0.5")
    assert resolve_chain("10.0.0.5", ["5.6.7.8"], ()) is None


async def test_scheme_and_host_pass_on_only_from_a_trusted_proxy(gateway_factory, echo, make_token):
    headers = {
        **bearer(make_token()),
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "rooms.example",
    }
    url = str(echo.server.make_url(""))
    for trusted, proto, host in [
        ("", "http", None),
        (LOOPBACK, "https", "rooms.example"),
    ]:
        gateway = await gateway_factory(url, trusted_proxies=trusted)
        r = await gateway.get("/api/anything", headers=headers)
        seen = {k.lower(): v for k, v in (await r.json())["headers"].items()}
        assert seen["x-forwarded-proto"] == proto
        assert seen["x-forwarded-host"] == (host or f"127.0.0.1:{gateway.port}")
