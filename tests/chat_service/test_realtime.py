"""shared.realtime as the chat socket shows it: a stream the server ends says why,
with a close code that asks the client to reconnect and resume with `after`."""

from __future__ import annotations

import asyncio
import socket
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
import asyncpg

from chat_service import store
from chat_service.app import create_app
from chat_service.events import RoomEvents, topic_of
from shared.realtime import REALTIME_KEY, Ending, Subscription
from tests.chat_service.helpers import create_room, join, send

TIMEOUT_S = 10  # an upper bound on delivery, not a pause
LONG = "x" * 4000


def tiny_receive_buffer(addr_info: Any) -> socket.socket:
    """A client socket whose kernel buffer is small: one that stops reading
    backs the server up quickly, as a client on a slow link does."""
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def watch_endings(monkeypatch: Any) -> dict[str, asyncio.Event]:
    """An event per reason, set when the replica ends a stream for it."""
    seen: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
    end = Subscription.end

    def recorded(subscription: Subscription, ending: Ending) -> None:
        end(subscription, ending)
        seen[ending.reason].set()

    monkeypatch.setattr(Subscription, "end", recorded)
    return seen


async def close_frame(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """Read past whatever was sent until the close frame."""
    while True:
        message = await ws.receive(timeout=TIMEOUT_S)
        if message.type != aiohttp.WSMsgType.TEXT:
            return message


async def flood(database_url: str, broadcaster: Any, room_id: int, count: int) -> None:
    """`count` long messages in the room, all committed at once, each announced
    as send_room_message does: far more than a socket's buffers hold."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            ids = await conn.fetch(
                "INSERT INTO chat.room_messages (room_id, username, body)"
                " SELECT $1, 'alice', repeat('x', 4000) FROM generate_series(1, $2) RETURNING id",
                room_id,
                count,
            )
            for row in ids:
                await broadcaster.publish(conn, topic_of(room_id), {"message_id": row["id"]})
    finally:
        await conn.close()


async def test_a_consumer_that_falls_behind_is_closed_with_1013(
    aiohttp_client, chat_settings, auth, database_url, monkeypatch
):
    endings = watch_endings(monkeypatch)
    settings = chat_settings.model_copy(update={"realtime_subscriber_buffer": 4})
    service = await aiohttp_client(create_app(settings))
    room_id = await create_room(service, auth("alice"), "General")
    connector = aiohttp.TCPConnector(socket_factory=tiny_receive_buffer)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.ws_connect(
            service.make_url(f"/api/rooms/{room_id}/ws"), headers=auth("alice")
        ) as ws,
    ):
        # The client reads nothing while the room fills up (8 MB).
        broadcaster = service.server.app[REALTIME_KEY]
        await flood(database_url, broadcaster, room_id, 2000)
        await asyncio.wait_for(endings["too slow"].wait(), TIMEOUT_S)
        closing = await close_frame(ws)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (1013, "too slow")


async def test_losing_the_listen_connection_closes_streams_with_1012(
    aiohttp_client, chat_settings, auth, db
):
    service = await aiohttp_client(create_app(chat_settings))
    broadcaster = service.server.app[REALTIME_KEY]
    room_id = await create_room(service, auth("alice"), "General")
    path = f"/api/rooms/{room_id}/ws"
    async with service.ws_connect(path, headers=auth("alice")) as ws:
        pid = broadcaster.listen_pid
        assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
        closing = await ws.receive(timeout=TIMEOUT_S)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (1012, "resync")
    # The replica listens again by itself; a new socket hears what is sent.
    async with service.ws_connect(path, headers=auth("alice")) as ws:
        assert broadcaster.listen_pid not in (None, pid)
        status, sent = await send(service, auth("alice"), room_id, "heard again")
        assert status == 201
        assert (await ws.receive_json(timeout=TIMEOUT_S))["message_id"] == sent["message_id"]


async def test_an_overflowing_inbox_ends_the_topics_streams_with_1012(
    aiohttp_client, chat_settings, auth, database_url
):
    settings = chat_settings.model_copy(update={"realtime_inbox_size": 2})
    service = await aiohttp_client(create_app(settings))
    broadcaster = service.server.app[REALTIME_KEY]
    general = await create_room(service, auth("alice"), "General")
    other = await create_room(service, auth("alice"), "Other")
    async with (
        service.ws_connect(f"/api/rooms/{general}/ws", headers=auth("alice")) as flooded,
        service.ws_connect(f"/api/rooms/{other}/ws", headers=auth("alice")) as calm,
    ):
        # One commit, five events: they reach the replica in one burst.
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                for n in range(5):
                    await broadcaster.publish(conn, topic_of(general), {"message_id": -n})
        finally:
            await conn.close()
        closing = await flooded.receive(timeout=TIMEOUT_S)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (1012, "resync")
        # Another room's stream goes on.
        status, sent = await send(service, auth("alice"), other, "still here")
        assert status == 201
        assert (await calm.receive_json(timeout=TIMEOUT_S))["message_id"] == sent["message_id"]


async def test_events_of_a_topic_nobody_here_follows_take_no_room_in_the_inbox(
    aiohttp_client, chat_settings, auth, database_url, caplog
):
    """Every replica hears every room's events: those of rooms it has no listener
    for are dropped on arrival, so a burst of them cannot overflow the inbox."""
    settings = chat_settings.model_copy(update={"realtime_inbox_size": 2})
    service = await aiohttp_client(create_app(settings))
    broadcaster = service.server.app[REALTIME_KEY]
    general = await create_room(service, auth("alice"), "General")
    other = await create_room(service, auth("alice"), "Other")
    with broadcaster.subscribe(topic_of(other)) as followed:
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                for n in range(5):
                    await broadcaster.publish(conn, topic_of(general), {"message_id": -n})
                await broadcaster.publish(conn, topic_of(other), {"room_deleted": True})
        finally:
            await conn.close()
        event = await asyncio.wait_for(anext(followed), TIMEOUT_S)
        assert event == {"room_deleted": True}
        assert followed.ending is None
    assert "realtime inbox full" not in caplog.text


async def test_a_leave_committed_right_after_the_membership_check_ends_the_stream(
    service, auth, monkeypatch
):
    """The race made certain: bob's leave commits, and reaches the replica, just
    after his socket's membership check passed. The socket subscribed before the
    check, so it hears the leave and closes with 4403 rather than stay open."""
    broadcaster = service.server.app[REALTIME_KEY]
    room_id = await create_room(service, auth("alice"), "General")
    assert (await join(service, auth("bob"), "General"))[0] == 200
    checked = store.require_member

    async def check_then_leave(pool: Any, room: int, username: str) -> None:
        await checked(pool, room, username)
        with broadcaster.subscribe(topic_of(room)) as probe:
            await store.leave_room(pool, room, username, RoomEvents(broadcaster))
            async for event in probe:  # past earlier events still on their way
                if event == {"left": "bob"}:
                    break

    monkeypatch.setattr(store, "require_member", check_then_leave)
    async with service.ws_connect(f"/api/rooms/{room_id}/ws", headers=auth("bob")) as ws:
        closing = await ws.receive(timeout=TIMEOUT_S)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (4403, "you are not in this room")


BACKEND_KEY_DATA = b"K\x00\x00\x00\x0c"  # the server's pid, at the start of a session


class FreezingProxy:
    """A TCP relay to Postgres that can stop passing one session's bytes without
    closing it: a half-open connection, as a lost NAT entry or a dead peer leaves."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        socket_dir = dict(parse_qsl(parts.query)).get("host")
        self.unix_path = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}" if socket_dir else None
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.dsn = parts
        self.flowing: dict[int, asyncio.Event] = {}  # by backend pid
        self.tasks: set[asyncio.Task[Any]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        """The DSN that goes through the relay."""
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        user = self.dsn.netloc.rsplit("@", 1)[0]
        return urlunsplit(("postgresql", f"{user}@127.0.0.1:{port}", self.dsn.path, "", ""))

    def freeze(self, pid: int) -> None:
        self.flowing[pid].clear()

    async def close(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in self.writers:
            writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.unix_path is not None:
            up_reader, up_writer = await asyncio.open_unix_connection(self.unix_path)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]
        flowing = asyncio.Event()
        flowing.set()
        for source, sink, server_side in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.create_task(self._pipe(source, sink, flowing, server_side))
            self.tasks.add(task)

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        flowing: asyncio.Event,
        server_side: bool,
    ) -> None:
        seen = b""
        while data := await source.read(65536):
            if server_side and flowing not in self.flowing.values():
                seen += data
                at = seen.find(BACKEND_KEY_DATA)
                if at >= 0 and len(seen) >= at + 9:
                    pid = int.from_bytes(seen[at + 5 : at + 9], "big")
                    self.flowing[pid] = flowing
            await flowing.wait()
            sink.write(data)
            await sink.drain()
        sink.close()


async def test_a_listen_connection_that_stops_answering_is_replaced_and_streams_get_1012(
    aiohttp_client, chat_settings, auth, db
):
    proxy = FreezingProxy(chat_settings.database_url)
    relayed = await proxy.start()
    try:
        settings = chat_settings.model_copy(
            update={
                "database_url": relayed,
                "realtime_liveness_interval_s": 0.2,
                "realtime_liveness_timeout_s": 0.5,
            }
        )
        service = await aiohttp_client(create_app(settings))
        broadcaster = service.server.app[REALTIME_KEY]
        room_id = await create_room(service, auth(), "General")
        path = f"/api/rooms/{room_id}/ws"
        async with service.ws_connect(path, headers=auth()) as ws:
            pid = broadcaster.listen_pid
            proxy.freeze(pid)  # no error, no close: the connection just goes silent
            closing = await ws.receive(timeout=TIMEOUT_S)
            assert closing.type == aiohttp.WSMsgType.CLOSE
            assert (closing.data, closing.extra) == (1012, "resync")
        async with service.ws_connect(f"{path}?after=0", headers=auth()) as ws:
            assert broadcaster.listen_pid not in (None, pid)
            status, sent = await send(service, auth(), room_id, "heard again")
            assert status == 201
            assert (await ws.receive_json(timeout=TIMEOUT_S))["message_id"] == sent["message_id"]
        await service.close()
    finally:
        await proxy.close()
