"""An edge serves its requests without the app's middlewares and on_response_prepare
signals, doing what those it was written against do (shared.edge_reply.require_known):
an app given another one refuses to start, rather than skip it for the edge's
requests without a word."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from chat_service.app import create_app as create_chat
from chat_service.settings import ChatSettings
from gateway.app import create_app as create_gateway
from meeting_service.app import create_app as create_meeting
from meeting_service.settings import MeetingSettings


@web.middleware
async def audit_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    return await handler(request)


async def stamp(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Stamp"] = "1"


def _app(name: str, database_url: str, jwks_json: str, gateway_stack: Any) -> web.Application:
    if name == "gateway":
        return create_gateway(gateway_stack.gateway_settings)
    if name == "chat":
        return create_chat(ChatSettings(database_url=database_url, jwks=jwks_json))
    return create_meeting(MeetingSettings(database_url=database_url, jwks=jwks_json))


@pytest.mark.parametrize("name", ["gateway", "chat", "meeting"])
@pytest.mark.parametrize("added", ["middleware", "signal"])
async def test_an_app_with_a_middleware_its_edge_does_not_do_does_not_start(
    aiohttp_client, database_url, jwks_json, gateway_stack, name, added
):
    app = _app(name, database_url, jwks_json, gateway_stack)
    if added == "middleware":
        app.middlewares.append(audit_middleware)
    else:
        app.on_response_prepare.append(stamp)
    with pytest.raises(RuntimeError) as refused:
        await aiohttp_client(app)
    unknown = audit_middleware if added == "middleware" else stamp
    assert f"{__name__}.{unknown.__qualname__}" in str(refused.value)


@pytest.mark.parametrize("name", ["gateway", "chat", "meeting"])
async def test_the_apps_as_made_start(aiohttp_client, database_url, jwks_json, gateway_stack, name):
    client = await aiohttp_client(_app(name, database_url, jwks_json, gateway_stack))
    assert (await client.get("/healthz")).status == 200
