from __future__ import annotations

from pathlib import Path

from aiohttp import web

from chat_service.edge import EDGE_ROUTES
from chat_service.events import CHANNEL, expand_event
from chat_service.history_cache import add_history_cache
from chat_service.routes import SETTINGS_KEY, routes, store_error_middleware
from chat_service.sending import batchers_ctx
from chat_service.settings import ChatSettings
from shared.app import service_app
from shared.idempotency import purge_ctx as idempotency_purge_ctx
from shared.passwords import passwords_ctx
from shared.realtime import realtime_ctx
from shared.service_edge import serve_at_the_edge

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ChatSettings | None = None) -> web.Application:
    settings = settings or ChatSettings()
    app = service_app(
        settings,
        title="Chat service",
        service="chat",
        migrations=MIGRATIONS,
        # Innermost, after auth: turns the store's refusals into API errors.
        extra_middlewares=[store_error_middleware],
    )
    # After the database's context, whose pool it listens on.
    app.cleanup_ctx.append(realtime_ctx(CHANNEL, expand=expand_event, settings=settings))
    # After the realtime context, whose channel it sends on; so cleaned up before
    # the pool closes.
    app.cleanup_ctx.append(batchers_ctx(settings))
    app.cleanup_ctx.append(passwords_ctx(settings))
    app.cleanup_ctx.append(idempotency_purge_ctx)
    app[SETTINGS_KEY] = settings
    add_history_cache(app, settings)
    app.add_routes(routes)
    serve_at_the_edge(app, settings, EDGE_ROUTES, middlewares=[store_error_middleware])
    return app
