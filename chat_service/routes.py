from __future__ import annotations

from aiohttp import web

from chat_service.settings import ChatSettings
from shared.endpoints import endpoint

SETTINGS_KEY = web.AppKey("settings", ChatSettings)
routes = web.RouteTableDef()


@routes.get("/api/rooms")
@endpoint("Public rooms", guests=False, tags=("chat",))
async def list_rooms(request: web.Request) -> web.Response:
    return web.json_response({"rooms": []})
