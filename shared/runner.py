"""Run one process's app on uvloop, with structured logs."""

from __future__ import annotations

import asyncio
import logging
import os
import threading

import uvloop
from aiohttp import web

from shared.logs import AccessLogger, configure_logging
from shared.server import SERVER_OPTIONS, AppRunner
from shared.settings import CommonSettings

# aiohttp waits up to shutdown_timeout for a request in flight, then as long again
# for it to end once told to (a handler not reading its body does not notice), then
# cancels it: 2 x 0.25 of the grace period, after 0.2 for closing sockets
# (shared.websockets.CLOSE_SHARE), leaves 0.3 for the cleanup contexts and exit.
log = logging.getLogger(__name__)

IN_FLIGHT_SHARE = 0.25


def _exit_at_deadline(grace_s: float) -> None:
    """The last resort, should cleanup hang (a database that stopped answering):
    the process is gone by the end of its grace period, as an orchestrator would
    make it, but with a line in the log saying so."""

    def overrun() -> None:
        log.error("shutdown overran its grace period; exiting", extra={"grace_s": grace_s})
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(grace_s, overrun)
    timer.daemon = True
    timer.start()


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
        _exit_at_deadline(settings.shutdown_grace_s)
        loop.run_until_complete(runner.cleanup())
        leftover = asyncio.all_tasks(loop)
        for task in leftover:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
