from __future__ import annotations

from pathlib import Path

from aiohttp import web

from meeting_service.batches import batchers_ctx
from meeting_service.edge import EDGE_ROUTES
from meeting_service.events_store import expand_event
from meeting_service.media_routes import media_routes
from meeting_service.presence import presence_ctx
from meeting_service.room_codes import CODE_GENERATOR_KEY, CodeGenerator, new_room_code
from meeting_service.routes import refusal_middleware, routes
from meeting_service.settings import SETTINGS_KEY, MeetingSettings
from shared.app import service_app
from shared.idempotency import purge_ctx as idempotency_purge_ctx
from shared.realtime import realtime_ctx
from shared.service_edge import serve_at_the_edge

MIGRATIONS = Path(__file__).parent / "migrations"
EVENTS_CHANNEL = "meeting_events"


def create_app(
    settings: MeetingSettings | None = None, *, code_generator: CodeGenerator = new_room_code
) -> web.Application:
    """`code_generator` draws candidate room codes; tests pass one that collides."""
    settings = settings or MeetingSettings()
    app = service_app(
        settings,
        title="Meeting service",
        service="meeting",
        migrations=MIGRATIONS,
        # Inside the shared error middleware, which answers what it raises.
        extra_middlewares=[refusal_middleware],
    )
    app[SETTINGS_KEY] = settings
    app[CODE_GENERATOR_KEY] = code_generator
    app.cleanup_ctx.append(realtime_ctx(EVENTS_CHANNEL, expand=expand_event, settings=settings))
    app.cleanup_ctx.append(presence_ctx(settings))
    app.cleanup_ctx.append(idempotency_purge_ctx)
    app.cleanup_ctx.append(batchers_ctx)
    app.add_routes(routes)
    app.add_routes(media_routes)
    serve_at_the_edge(app, settings, EDGE_ROUTES, middlewares=[refusal_middleware])
    return app
