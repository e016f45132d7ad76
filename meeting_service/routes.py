from __future__ import annotations

from aiohttp import web

from meeting_service.settings import MeetingSettings
from shared.endpoints import endpoint

SETTINGS_KEY = web.AppKey("settings", MeetingSettings)
routes = web.RouteTableDef()


@routes.get("/rooms")
@endpoint("Rooms the caller hosts or has joined", tags=("meeting",))
async def my_rooms(request: web.Request) -> web.Response:
    return web.json_response({"rooms": [], "next_cursor": None})
