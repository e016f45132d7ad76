"""Run one process's app on uvloop, with structured logs from the first line to the last:
a startup line (version, address), a shutdown line, and a startup failure as a JSON
line (never a bare traceback) with exit status 1."""

from __future__ import annotations

import asyncio
import logging
import os
import runpy
import sys
import threading
from collections.abc import Callable
from typing import NoReturn, TypeVar

import uvloop
from aiohttp import web
from pydantic import ValidationError

from shared.logs import AccessLogger, configure_logging
from shared.server import SERVER_OPTIONS, AppRunner
from shared.settings import CommonSettings
from shared.version import VERSION

log = logging.getLogger("rooms.process")
S = TypeVar("S", bound=CommonSettings)


def main(service: str, settings_type: type[S], create_app: Callable[[S], web.Application]) -> None:
    """A process's entry point: settings from the environment, the app, then serve."""
    # Configured once, before the settings are read, so that their errors are JSON too.
    configure_logging(service, os.environ.get("LOG_LEVEL", "INFO"))
    try:
        settings = settings_type()
        logging.getLogger().setLevel(settings.log_level.upper())
        app = create_app(settings)
    except ValidationError as exc:
        _failed("configuration", exc, details=exc.errors(include_url=False, include_input=False))
    except Exception as exc:
        _failed("configuration", exc, traceback=True)
    serve(app, settings, service)


def _failed(
    stage: str, exc: BaseException, *, details: object = None, traceback: bool = False
) -> NoReturn:
    log.critical(
        "startup failed",
        exc_info=exc if traceback else None,
        extra={"stage": stage, "error": str(exc), "details": details, "version": VERSION},
    )
    sys.exit(1)


# aiohttp waits up to shutdown_timeout for a request in flight, then as long again
# for it to end once told to (a handler not reading its body does not notice), then
# cancels it: 2 x 0.25 of the grace period, after 0.2 for closing sockets
# (shared.websockets.CLOSE_SHARE), leaves 0.3 for the cleanup contexts and exit.
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
    """Serve until SIGINT or SIGTERM, then shut down as web.run_app does. Logs
    `started` once it listens, `shutting down` at the signal, `stopped` last; a
    failure to start is a `startup failed` line and exit status 1. Logging is
    configured by `main`."""

    async def on_shutdown(_app: web.Application) -> None:
        log.info("shutting down", extra={"version": VERSION})

    app.on_shutdown.append(on_shutdown)
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
    failure: Exception | None = None
    try:
        try:
            loop.run_until_complete(_start(runner, settings))
        except Exception as exc:
            failure = exc
        else:
            _log_started(settings)
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
    if failure is not None:
        _failed("start", failure, traceback=not isinstance(failure, OSError))
    log.info("stopped", extra={"version": VERSION})


def _log_started(settings: CommonSettings) -> None:
    extra: dict[str, object] = {
        "version": VERSION,
        "address": f"http://{settings.host}:{settings.port}",
    }
    if settings.metrics_port is not None:
        extra["metrics_address"] = f"http://{settings.metrics_host}:{settings.metrics_port}"
    log.info("started", extra=extra)


PROCESSES = ("gateway", "chat_service", "meeting_service")

if __name__ == "__main__":
    # The container's command: `SERVICE=gateway python -m shared.runner`, so one
    # image recipe (the Dockerfile's SERVICE build argument) serves all three.
    service = os.environ.get("SERVICE", "")
    if service not in PROCESSES:
        configure_logging("runner")
        _failed("configuration", ValueError(f"SERVICE must be one of {', '.join(PROCESSES)}"))
    runpy.run_module(service, run_name="__main__", alter_sys=True)
