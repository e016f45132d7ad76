"""CORS at the gateway, as a browser on another origin exercises it: a preflight
(OPTIONS, no token) before any request that is not "simple", then the request itself,
whose answer the page may read only if Access-Control-Allow-Origin names its origin."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings

APP = "https://app.example.com"
OTHER = "https://evil.example.net"


def preflight(origin: str, method: str = "POST", headers: str = "authorization,content-type"):
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest.fixture
async def gateway(gateway_factory, echo):
    return await gateway_factory(
        str(echo.server.make_url("")), cors_allowed_origins=(APP, "http://localhost:3000")
    )


def vary(response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("Vary", "").split(",")}


async def test_a_preflight_from_a_listed_origin_is_answered_without_a_token(gateway, echo):
    for path, method in (
        ("/api/send_room_message", "POST"),  # proxied: would be 401 without a token
        ("/auth/login", "POST"),  # the gateway's own
        ("/auth/me", "PATCH"),
        ("/rooms/abc/settings", "PATCH"),
    ):
        r = await gateway.options(path, headers=preflight(APP, method))
        assert r.status == 204, path
        assert r.headers["Access-Control-Allow-Origin"] == APP
        methods = {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")}
        assert {"GET", "POST", "PATCH", "DELETE", "PUT"} <= methods
        allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key", "x-request-id"} <= allowed
        assert int(r.headers["Access-Control-Max-Age"]) > 0
        assert "Access-Control-Allow-Credentials" not in r.headers
        assert {"origin", "access-control-request-method"} <= vary(r)
        assert await r.read() == b""
    assert echo.requests == []  # a preflight never reaches a service


async def test_the_answer_itself_is_readable_by_a_listed_origin(gateway, make_token):
    token = make_token("alice")
    r = await gateway.get("/api/rooms", headers={"Origin": APP, "Authorization": token})
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == APP
    exposed = {h.strip() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"X-Request-ID", "Retry-After", "Idempotent-Replayed"}
    assert "origin" in vary(r)
    assert "Access-Control-Allow-Credentials" not in r.headers
    # An error is readable too: the page sees the 401 and its code, not a CORS failure.
    r = await gateway.get("/auth/me", headers={"Origin": "http://localhost:3000"})
    assert r.status == 401
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert (await r.json())["code"] == "unauthorized"
    r = await gateway.post("/auth/login", json={}, headers={"Origin": APP})
    assert (r.status, r.headers["Access-Control-Allow-Origin"]) == (400, APP)


async def test_an_origin_not_listed_gets_no_cors_headers(gateway, echo, make_token):
    r = await gateway.options("/api/send_room_message", headers=preflight(OTHER))
    assert r.status == 403
    assert await r.json() == {"error": "origin not allowed", "code": "origin_not_allowed"}
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Allow-Methods" not in r.headers
    r = await gateway.get("/api/rooms", headers={"Origin": OTHER, "Authorization": make_token()})
    assert r.status == 200  # the server answers; the browser keeps it from the page
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Expose-Headers" not in r.headers
    assert "origin" in vary(r)  # a cache must not give this answer to a listed origin
    # Origins are compared whole: no prefix, suffix or scheme tricks.
    for origin in (APP + ".evil.net", "http://app.example.com", APP + ":8443", "null"):
        r = await gateway.options("/auth/login", headers=preflight(origin))
        assert r.status == 403, origin


async def test_an_options_request_that_is_not_a_preflight_is_routed_as_usual(gateway):
    r = await gateway.options("/auth/login", headers={"Origin": APP})
    assert r.status == 405
    assert r.headers["Access-Control-Allow-Origin"] == APP


async def test_no_origin_is_allowed_by_default(gateway_factory, echo):
    gateway = await gateway_factory(str(echo.server.make_url("")))
    r = await gateway.options("/auth/login", headers=preflight(APP))
    assert r.status == 405
    r = await gateway.options("/api/send_room_message", headers=preflight(APP))
    assert r.status == 401
    assert "Access-Control-Allow-Origin" not in r.headers
    r = await gateway.post("/auth/login", json={}, headers={"Origin": APP})
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "origin" not in vary(r)


def test_origins_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", f" {APP}, http://localhost:3000 ,")
    assert GatewaySettings().cors_allowed_origins == (APP, "http://localhost:3000")
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "*")
    assert GatewaySettings().cors_allowed_origins == ("*",)
    monkeypatch.delenv("CORS_ALLOWED_ORIGINS")
    assert GatewaySettings().cors_allowed_origins == ()
    # A typo would never match a browser's Origin: refused at startup instead.
    for wrong in (APP + "/", "app.example.com", APP + "/path", "ftp://app.example.com"):
        monkeypatch.setenv("CORS_ALLOWED_ORIGINS", wrong)
        with pytest.raises(ValidationError):
            GatewaySettings()


async def test_any_origin_when_the_operator_says_star(gateway_factory, echo):
    gateway = await gateway_factory(str(echo.server.make_url("")), cors_allowed_origins=("*",))
    r = await gateway.options("/auth/login", headers=preflight(OTHER))
    assert (r.status, r.headers["Access-Control-Allow-Origin"]) == (204, OTHER)
