"""CORS in a real browser: a page served from another origin calls the gateway with a
token (a preflight, then the request) and reads the answer and its X-Request-ID; when
its origin is not listed, the browser keeps the answer from it."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser

from tests.conftest import gateway_settings_for

CALL = """async ([api, token]) => {
  try {
    const r = await fetch(api + "/api/create_room", {
      method: "POST",
      headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
      body: JSON.stringify({room_name: "from elsewhere"}),
    });
    return {status: r.status, requestId: r.headers.get("X-Request-ID"), body: await r.json()};
  } catch (error) {
    return {failed: String(error)};
  }
}"""


async def _gateway(
    aiohttp_server: Any,
    database_url: str,
    signing_key: Any,
    jwks_json: str,
    origins: tuple[str, ...],
) -> str:
    from chat_service.app import create_app as create_chat
    from chat_service.settings import ChatSettings
    from gateway.app import create_app as create_gateway

    chat = await aiohttp_server(
        create_chat(ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4))
    )
    settings = gateway_settings_for(
        database_url,
        signing_key,
        chat_url=str(chat.make_url("")),
        cors_allowed_origins=origins,
    )
    gateway = await aiohttp_server(create_gateway(settings))
    return str(gateway.make_url("")).rstrip("/")


async def _call_from_elsewhere(
    browser: Browser, aiohttp_server: Any, gateway: Any, token: str, listed: bool
) -> dict[str, Any]:
    """A page on its own origin calls the gateway; `listed`: the gateway allows that origin."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>elsewhere</title>", content_type="text/html"
        )

    site = web.Application()
    site.router.add_get("/", page)
    elsewhere = str((await aiohttp_server(site)).make_url("")).rstrip("/")
    api = await gateway(elsewhere if listed else "https://app.example.com")
    context = await browser.new_context()
    try:
        tab = await context.new_page()
        await tab.goto(elsewhere + "/")
        answer: dict[str, Any] = await tab.evaluate(CALL, [api, token])
        return answer
    finally:
        await context.close()


@pytest.mark.parametrize("listed", [True, False])
async def test_a_page_on_another_origin_calls_the_api(
    browser: Browser, aiohttp_server, database_url, signing_key, jwks_json, make_token, listed
) -> None:
    async def gateway(origin: str) -> str:
        return await _gateway(aiohttp_server, database_url, signing_key, jwks_json, (origin,))

    answer = await _call_from_elsewhere(
        browser, aiohttp_server, gateway, make_token("alice"), listed=listed
    )
    if not listed:
        # The preflight is refused: the browser sends nothing and the page learns nothing.
        assert "Failed to fetch" in answer.get("failed", ""), answer
        return
    assert answer["status"] == 201, answer
    assert answer["body"]["message"] == 'room "from elsewhere" created'
    assert answer["requestId"]  # exposed, so the page can quote it
