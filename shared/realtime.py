"""Real-time fan-out across replicas through Postgres LISTEN/NOTIFY.

A writer publishes an event inside the transaction that made the change, so
it goes out exactly when the change commits. Every replica holds one LISTEN
connection; an event is expanded once per replica (ids into full objects,
since a NOTIFY payload is limited to 8000 bytes) and handed to the WebSocket
clients of its topic on that replica, in the order Postgres delivered them.

A stream the server ends says why, as the close code its socket closes with:
1012 "resync" when events may have been missed (the LISTEN connection was lost
or found dead, or the replica's inbox overflowed), 1013 "too slow" for a
consumer that fell behind, 1001 "going away" at shutdown. Each asks the client
to reconnect and resume with `after`, which replays the gap from the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from aiohttp import WSCloseCode, web

from shared.db import POOL_KEY, Conn
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Event = dict[str, Any]
Expand = Callable[[asyncpg.Pool, Event], Awaitable[Event | None]]
MAX_PAYLOAD_BYTES = 7900


@dataclass(frozen=True)
class Ending:
    """Why the server ends a stream: the WebSocket close code and reason its
    socket closes with (RFC 6455 §7.4.1, IANA registry)."""

    code: int
    reason: str


# Shutdown or deploy: reconnect (another replica answers) and resume with `after`.
GOING_AWAY = Ending(WSCloseCode.GOING_AWAY, "going away")
# Events may have been missed (the LISTEN connection was lost, or the replica's
# inbox overflowed): reconnect and resume with `after`, which replays the gap.
RESYNC = Ending(WSCloseCode.SERVICE_RESTART, "resync")
# The consumer fell too far behind: reconnect and resume with `after`.
TOO_SLOW = Ending(WSCloseCode.TRY_AGAIN_LATER, "too slow")


class Publisher(Protocol):
    """What a store needs of the broadcaster: send an event when the transaction
    `conn` is in commits, and never otherwise. Stores take this, not aiohttp."""

    async def publish(self, conn: Conn, topic: str, event: Event) -> None: ...


def notify_sql(channel: str, topic: str, event: str) -> str:
    """A `pg_notify` call sending what `Broadcaster.publish` sends, for a statement
    that makes its change and publishes it in one round trip: `channel` is the
    placeholder of the channel's name, `topic` a text expression, `event` a json
    one (ids only: the payload must stay under MAX_PAYLOAD_BYTES)."""
    return f"pg_notify({channel}, json_build_object('topic', {topic}, 'event', {event})::text)"


_END: Event = {}


class Subscription:
    """One consumer's events of one topic, in commit order, until either the
    consumer leaves or the server ends it; `ending` then says why."""

    def __init__(self, buffer: int) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue(max(buffer, 1))
        self.ending: Ending | None = None

    def offer(self, event: Event) -> None:
        """Queue `event`; a consumer whose buffer is full is ended as too slow
        rather than let memory grow."""
        if self.ending is not None:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.end(TOO_SLOW)

    def end(self, ending: Ending) -> None:
        """Stop the stream at once (what is still queued is dropped: the consumer
        resumes from the history). The first ending given is the one kept."""
        if self.ending is not None:
            return
        self.ending = ending
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_END)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self.ending is not None:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is _END:
            raise StopAsyncIteration
        return event


class NotListening(Exception):
    """The replica has no working LISTEN connection: it cannot promise delivery."""


class Broadcaster:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channel: str,
        expand: Expand | None = None,
        settings: ServiceSettings | None = None,
    ) -> None:
        self.pool = pool
        self.channel = channel
        self.expand = expand
        self.settings = settings or ServiceSettings()
        self._topics: dict[str, set[Subscription]] = {}
        # A generation per LISTEN connection: what was queued before a loss is stale.
        self._generation = 0
        self._inbox: asyncio.Queue[tuple[int, str, Event]] = asyncio.Queue(
            self.settings.realtime_inbox_size
        )
        self._listening = asyncio.Event()
        self.listen_pid: int | None = None

    async def publish(self, conn: Conn, topic: str, event: Event) -> None:
        """Queue `event` for `topic`; Postgres sends it when conn's transaction commits."""
        payload = json.dumps({"topic": topic, "event": event}, separators=(",", ":"), default=str)
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError("a realtime event must stay small: publish ids and expand them")
        await conn.execute("SELECT pg_notify($1, $2)", self.channel, payload)

    async def wait_listening(self, within_s: float = 10) -> None:
        """Return once events are being received; NotListening after `within_s`."""
        try:
            async with asyncio.timeout(within_s):
                await self._listening.wait()
        except TimeoutError:
            raise NotListening from None

    @contextlib.contextmanager
    def subscribe(self, topic: str) -> Iterator[Subscription]:
        """Every event of `topic` committed from now on, until the `with` ends.
        Subscribe after `wait_listening`: a subscription that exists when the
        LISTEN connection is found lost is ended with RESYNC."""
        subscription = Subscription(self.settings.realtime_subscriber_buffer)
        self._topics.setdefault(topic, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._topics.get(topic)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._topics[topic]

    def end_all(self, ending: Ending, topic: str | None = None) -> None:
        """End every subscription (of `topic`, if given) with `ending`."""
        groups = [self._topics.get(topic, set())] if topic is not None else self._topics.values()
        for subscription in [s for group in groups for s in group]:
            subscription.end(ending)

    def _on_notify(self, conn: Conn, pid: int, channel: str, payload: object) -> None:
        try:
            message = json.loads(str(payload))
            topic, event = str(message["topic"]), message["event"]
        except (ValueError, KeyError, TypeError):
            log.warning("malformed notification dropped", extra={"channel": channel})
            return
        if topic not in self._topics:
            # Nobody here listens to it: it was committed before any subscription
            # that may yet come (which reads what it missed from the history), so
            # it costs this replica nothing more, and takes no room in the inbox.
            return
        try:
            self._inbox.put_nowait((self._generation, topic, event))
        except asyncio.QueueFull:
            # Dropping an event silently would leave a gap nobody knows of.
            log.warning("realtime inbox full", extra={"channel": channel, "topic": topic})
            self.end_all(RESYNC, topic)

    def _lost(self) -> None:
        """Events may have been committed that no one here will hear of: drop what
        is queued and tell every subscriber, who resumes from the history."""
        self._listening.clear()
        self.listen_pid = None
        self._generation += 1
        while not self._inbox.empty():
            self._inbox.get_nowait()
        self.end_all(RESYNC)

    async def listen(self) -> None:
        """Hold a LISTEN connection, and take a new one whenever it is lost."""
        delay = 0.1
        while True:
            if await self._listen_once():
                delay = 0.1  # it worked until now: try again at once
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _listen_once(self) -> bool:
        """Listen until the connection fails; whether it was listening by then."""
        timeout = self.settings.realtime_liveness_timeout_s
        try:
            async with self.pool.acquire(timeout=timeout) as conn:
                try:
                    lost = asyncio.Event()
                    conn.add_termination_listener(lambda _conn: lost.set())
                    async with asyncio.timeout(timeout):
                        await conn.add_listener(self.channel, self._on_notify)
                    self.listen_pid = conn.get_server_pid()
                    self._listening.set()
                    await self._watch(conn, lost)
                finally:
                    # It may be half-open: never hand it back to the pool.
                    conn.terminate()
        except asyncio.CancelledError:
            self._listening.clear()
            raise
        except Exception as exc:
            listened = self._listening.is_set()
            if listened:
                self._lost()
            log.warning(
                "realtime connection lost", extra={"channel": self.channel, "error": repr(exc)}
            )
            return listened
        raise AssertionError("unreachable: _watch only returns by raising")

    async def _watch(self, conn: Conn, lost: asyncio.Event) -> None:
        """Return when the connection is closed; raise when it stops answering
        (a half-open TCP connection is otherwise never noticed)."""
        interval = self.settings.realtime_liveness_interval_s
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), interval)
            if not lost.is_set():
                await conn.fetchval("SELECT 1", timeout=self.settings.realtime_liveness_timeout_s)
        raise ConnectionError("the LISTEN connection was closed")

    async def deliver(self) -> None:
        while True:
            generation, topic, event = await self._inbox.get()
            if generation != self._generation or not self._topics.get(topic):
                continue
            try:
                full = await self.expand(self.pool, event) if self.expand else event
            except Exception:
                log.exception("could not expand a realtime event", extra={"channel": self.channel})
                self.end_all(RESYNC, topic)
                continue
            if full is None or generation != self._generation:
                continue
            for subscription in list(self._topics.get(topic, ())):
                subscription.offer(full)


REALTIME_KEY = web.AppKey("realtime", Broadcaster)


def realtime_ctx(
    channel: str, expand: Expand | None = None, settings: ServiceSettings | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context: append it after the database's, whose pool it uses."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        broadcaster = Broadcaster(app[POOL_KEY], channel, expand, settings)
        app[REALTIME_KEY] = broadcaster
        tasks = [
            asyncio.create_task(broadcaster.listen()),
            asyncio.create_task(broadcaster.deliver()),
        ]
        try:
            await broadcaster.wait_listening()
            yield
        finally:
            broadcaster.end_all(GOING_AWAY)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    return ctx
