"""Run one process's app on uvloop, with structured logs."""

from __future__ import annotations

import asyncio

import uvloop
from aiohttp import web

from shared.logs import AccessLogger, configure_logging
from shared.server import SERVER_OPTIONS, AppRunner
from shared.settings import CommonSettings

# aiohttp waits up to shutdown_timeout for a request in flight, then as long again
# for it to end once told to (a handler not reading its body does not notice), then
# cancels it: 2 x 0.3 of the grace period, after 0.2 for closing sockets
# (shared.websockets.CLOSE_SHARE), leaves 0.2 for the cleanup contexts.
IN_FLIGHT_SHARE = 0.3


async def _start(runner: AppRunner, settings: CommonSettings) -> None:
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()


def serve(app: web.Application, settings: CommonSettings, service: str) -> None:
    """Serve until SIGINT or SIGTERM, then shut down as web.run_app does."""
    configure_logging(service, settings.log_level)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    runner = AppRunner(
        app,
        handle_signals=True,
        access_log_class=AccessLogger,
        # SIGTERM: stop accepting, close sockets with 1001 (on_shutdown), let
        # in-flight requests finish, then clean up, all within the grace period.
        shutdown_timeout=settings.shutdown_grace_s * IN_FLIGHT_SHARE,
        **SERVER_OPTIONS,
    )
    try:
        loop.run_until_complete(_start(runner, settings))
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        loop.run_until_complete(runner.cleanup())
        leftover = asyncio.all_tasks(loop)
        for task in leftover:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
