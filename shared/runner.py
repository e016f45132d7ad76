"""Run one process's app on uvloop, with structured logs."""

from __future__ import annotations

import uvloop
from aiohttp import web

from shared.logs import AccessLogger, configure_logging
from shared.settings import CommonSettings


def serve(app: web.Application, settings: CommonSettings, service: str) -> None:
    configure_logging(service, settings.log_level)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log_class=AccessLogger,
        print=None,
        loop=uvloop.new_event_loop(),
        shutdown_timeout=10,
    )
