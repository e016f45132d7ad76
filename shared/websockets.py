"""Every process's WebSockets: opened so that shutdown can find them, closed with
a code that tells the client what to do, and a room's events streamed to one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from shared.errors import ApiError
from shared.realtime import GOING_AWAY, Broadcaster, Ending, Event, NotListening

log = logging.getLogger(__name__)


INTERNAL_ERROR = Ending(WSCloseCode.INTERNAL_ERROR, "internal error")

OPEN_WEBSOCKETS_KEY: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey(
    "open_websockets"
)
# The close handshake of every socket at shutdown: this share of the grace period.
CLOSE_SHARE = 0.2


UPGRADE_REQUIRED = "websocket upgrade required"


async def open_websocket(request: web.Request, **options: Any) -> web.WebSocketResponse:
    """The handshake, with the socket registered for shutdown to close. A plain
    request (no upgrade) that got this far, past its authorization, is told how to
    ask: 426 with `Upgrade: websocket` (RFC 9110 §15.5.22)."""
    ws = web.WebSocketResponse(heartbeat=30, **options)
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise ApiError(
            426, UPGRADE_REQUIRED, headers={"Upgrade": "websocket", "Connection": "Upgrade"}
        )
    await ws.prepare(request)
    sockets = request.app.get(OPEN_WEBSOCKETS_KEY)
    if sockets is not None:
        sockets.add(ws)
    return ws


async def close_websocket(ws: web.WebSocketResponse, ending: Ending) -> None:
    with contextlib.suppress(ConnectionError):
        await ws.close(code=ending.code, message=ending.reason.encode())


def close_on_shutdown(app: web.Application, grace_s: float) -> None:
    """On shutdown (SIGTERM), after the server stopped accepting, close every open
    socket with 1001 "going away", as aiohttp's documentation shows; in-flight
    HTTP requests go on for the rest of the grace period."""
    open_sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
    app[OPEN_WEBSOCKETS_KEY] = open_sockets

    async def on_shutdown(app: web.Application) -> None:
        registered = app[OPEN_WEBSOCKETS_KEY]
        sockets = [ws for ws in list(registered) if not ws.closed]
        if not sockets:
            return
        log.info("closing websockets", extra={"count": len(sockets)})
        try:
            async with asyncio.timeout(grace_s * CLOSE_SHARE):
                await asyncio.gather(*(close_websocket(ws, GOING_AWAY) for ws in sockets))
        except TimeoutError:
            log.warning("websockets still closing at shutdown", extra={"count": len(sockets)})

    app.on_shutdown.append(on_shutdown)


@dataclass(frozen=True)
class Stream:
    """What one socket is sent, decided once its user is authorized: first the
    `replay` (from the history), then the live events `allow` lets through,
    until `close_on` names an event that ends the stream, and why: that event is
    sent when `allow` lets it through, and the socket closes with the ending."""

    allow: Callable[[Event], bool] | None = None
    close_on: Callable[[Event], Ending | None] | None = None
    replay: AsyncIterator[Event] | None = None
    # A two-way socket: each client data frame, in order (the meeting's signals).
    on_message: Callable[[web.WebSocketResponse, WSMessage], Awaitable[None]] | None = None
    # What the client is sent of an event `allow` let through (default: the event).
    shape: Callable[[Event], Event] | None = None


# Authorizes the client (raising refuses the upgrade with the error's status) and
# says what its stream is. Called after subscribing: nothing committed from then
# on (a leave, a removal) can be missed.
Start = Callable[[], Awaitable[Stream]]
LISTEN_WAIT_S = 5.0


async def serve_websocket(
    request: web.Request, broadcaster: Broadcaster, topic: str, start: Start
) -> web.WebSocketResponse:
    """Stream `topic`'s events to one WebSocket client until either side closes.

    Subscribe, then `start` (authorize), then the handshake, then the replay, then
    live events. When the server ends the subscription, the socket closes with
    the subscription's `ending` (1012, 1013, 1001). Clients send nothing we act
    on; reading handles their pings and close."""
    try:
        await broadcaster.wait_listening(LISTEN_WAIT_S)
    except NotListening:
        raise ApiError(503, "service unavailable", headers={"Retry-After": "1"}) from None
    with broadcaster.subscribe(topic) as subscription:
        stream = await start()
        ws = await open_websocket(request)

        async def pump() -> None:
            try:
                if stream.replay is not None:
                    async for event in stream.replay:
                        await ws.send_json(event)
                async for event in subscription:
                    ending = stream.close_on(event) if stream.close_on is not None else None
                    if ending is not None:
                        # The event that ends the stream is its last frame when the
                        # viewer may see it (the meeting's room.ended), then the close.
                        if stream.allow is None or stream.allow(event):
                            await ws.send_json(stream.shape(event) if stream.shape else event)
                        await close_websocket(ws, ending)
                        return
                    if stream.allow is None or stream.allow(event):
                        await ws.send_json(stream.shape(event) if stream.shape else event)
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("websocket stream failed", extra={"topic": topic})
                await close_websocket(ws, INTERNAL_ERROR)
                return
            await close_websocket(ws, subscription.ending or GOING_AWAY)

        sender = asyncio.create_task(pump())
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
                if stream.on_message is not None:
                    await stream.on_message(ws, message)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
    return ws
