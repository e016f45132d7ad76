"""Real-time fan-out across replicas through Postgres LISTEN/NOTIFY.

A writer publishes an event inside the transaction that made the change, so
it goes out exactly when the change commits. Every replica holds one LISTEN
connection; an event is expanded once per replica (ids into full objects,
since a NOTIFY payload is limited to 8000 bytes) and handed to the WebSocket
clients of its topic on that replica, in the order Postgres delivered them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import asyncpg
from aiohttp import WSMsgType, web

from shared.db import POOL_KEY, Conn

log = logging.getLogger(__name__)

Event = dict[str, Any]
Expand = Callable[[asyncpg.Pool, Event], Awaitable[Event | None]]
MAX_PAYLOAD_BYTES = 7900
SUBSCRIBER_BUFFER = 1000
_CLOSED: Event = {}


class Publisher(Protocol):
    """What a store needs of the broadcaster: send an event when the transaction
    `conn` is in commits, and never otherwise. Stores take this, not aiohttp."""

    async def publish(self, conn: Conn, topic: str, event: Event) -> None: ...


class Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_BUFFER)

    def offer(self, event: Event) -> bool:
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            return False

    def close(self) -> None:
        # A subscriber too slow to keep up is dropped rather than let memory grow.
        while True:
            try:
                self.queue.put_nowait(_CLOSED)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        event = await self.queue.get()
        if event is _CLOSED:
            raise StopAsyncIteration
        return event


class Broadcaster:
    def __init__(self, pool: asyncpg.Pool, channel: str, expand: Expand | None = None) -> None:
        self.pool = pool
        self.channel = channel
        self.expand = expand
        self._topics: dict[str, set[Subscription]] = {}
        self._inbox: asyncio.Queue[tuple[str, Event]] = asyncio.Queue()
        self._listening = asyncio.Event()

    async def publish(self, conn: Conn, topic: str, event: Event) -> None:
        """Queue `event` for `topic`; Postgres sends it when conn's transaction commits."""
        payload = json.dumps({"topic": topic, "event": event}, separators=(",", ":"), default=str)
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError("a realtime event must stay small: publish ids and expand them")
        await conn.execute("SELECT pg_notify($1, $2)", self.channel, payload)

    @contextlib.contextmanager
    def subscribe(self, topic: str) -> Any:
        subscription = Subscription()
        self._topics.setdefault(topic, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._topics.get(topic)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._topics[topic]

    def _on_notify(self, conn: Conn, pid: int, channel: str, payload: object) -> None:
        try:
            message = json.loads(str(payload))
            self._inbox.put_nowait((str(message["topic"]), message["event"]))
        except (ValueError, KeyError, TypeError):
            log.warning("malformed notification dropped", extra={"channel": channel})

    async def listen(self) -> None:
        """Hold a LISTEN connection, and take a new one whenever it is lost."""
        delay = 0.1
        while True:
            try:
                await self._listen_once()
                delay = 0.1
                log.warning("realtime connection lost", extra={"channel": self.channel})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "realtime listen failed", extra={"channel": self.channel, "error": repr(exc)}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _listen_once(self) -> None:
        async with self.pool.acquire() as conn:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(self.channel, self._on_notify)
            self._listening.set()
            try:
                await lost.wait()
            finally:
                self._listening.clear()
                if not conn.is_closed():
                    await conn.remove_listener(self.channel, self._on_notify)

    async def deliver(self) -> None:
        while True:
            topic, event = await self._inbox.get()
            if not self._topics.get(topic):
                continue
            try:
                full = await self.expand(self.pool, event) if self.expand else event
            except Exception:
                log.exception("could not expand a realtime event", extra={"channel": self.channel})
                continue
            if full is None:
                continue
            for subscription in list(self._topics.get(topic, ())):
                if not subscription.offer(full):
                    subscription.close()

    async def wait_listening(self) -> None:
        async with asyncio.timeout(10):
            await self._listening.wait()


REALTIME_KEY = web.AppKey("realtime", Broadcaster)


def realtime_ctx(
    channel: str, expand: Expand | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context: append it after the database's, whose pool it uses."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        broadcaster = Broadcaster(app[POOL_KEY], channel, expand)
        app[REALTIME_KEY] = broadcaster
        tasks = [
            asyncio.create_task(broadcaster.listen()),
            asyncio.create_task(broadcaster.deliver()),
        ]
        try:
            await broadcaster.wait_listening()
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    return ctx


async def serve_websocket(
    request: web.Request,
    broadcaster: Broadcaster,
    topic: str,
    allow: Callable[[Event], bool] | None = None,
    close_on: Callable[[Event], tuple[int, str] | None] | None = None,
) -> web.WebSocketResponse:
    """Stream `topic`'s events to one WebSocket client until either side closes.

    `allow` filters what this client may see; `close_on` ends its stream at an
    event (say, its user left the room) with a close code and reason. Clients
    send nothing we act on; reading handles their pings and close."""
    ws = web.WebSocketResponse(heartbeat=30)
    # Subscribed before the handshake completes, so nothing sent after the
    # client sees the upgrade can be missed.
    with broadcaster.subscribe(topic) as subscription:
        await ws.prepare(request)

        async def pump() -> None:
            async for event in subscription:
                ending = close_on(event) if close_on is not None else None
                if ending is not None:
                    await ws.close(code=ending[0], message=ending[1].encode())
                    return
                if allow is None or allow(event):
                    await ws.send_json(event)
            await ws.close(message=b"too slow")

        sender = asyncio.create_task(pump())
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
    return ws
