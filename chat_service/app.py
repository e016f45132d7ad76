from __future__ import annotations

from pathlib import Path

from aiohttp import web

from chat_service.routes import SETTINGS_KEY, routes, store_error_middleware
from chat_service.settings import ChatSettings
from shared.app import service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ChatSettings | None = None) -> web.Application:
    settings = settings or ChatSettings()
    app = service_app(settings, title="Chat service", service="chat", migrations=MIGRATIONS)
    # Innermost, after auth: turns the store's refusals into API errors.
    app.middlewares.append(store_error_middleware)
    app[SETTINGS_KEY] = settings
    app.add_routes(routes)
    return app
