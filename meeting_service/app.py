from __future__ import annotations

from pathlib import Path

from aiohttp import web

from meeting_service.routes import SETTINGS_KEY, routes
from meeting_service.settings import MeetingSettings
from shared.app import service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: MeetingSettings | None = None) -> web.Application:
    settings = settings or MeetingSettings()
    app = service_app(settings, title="Meeting service", service="meeting", migrations=MIGRATIONS)
    app[SETTINGS_KEY] = settings
    app.add_routes(routes)
    return app
