"""What WebSocket listeners of a room hear, carried by shared.realtime (LISTEN/NOTIFY).

Notifications carry ids only; each replica expands a message id into the message once.
Membership changes travel on the same topic as the messages, in commit order, so the
stream of a listener who leaves, or whose room is deleted, ends right there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from chat_service import messages_store, store
from shared.db import POOL_KEY, Conn
from shared.realtime import Broadcaster, Ending, Event
from shared.websockets import Stream, serve_websocket

CHANNEL = "chat_events"


def topic_of(room_id: int) -> str:
    return str(room_id)


class RoomEvents:
    """The store's `Events`: published inside the writing transaction, sent on commit."""

    def __init__(self, broadcaster: Broadcaster) -> None:
        self._broadcaster = broadcaster
        # The send statements notify by themselves (store.NOTIFY_SENT, in
        # store.send_message and sends_store.send_messages): {"message_id": id} on
        # the room's topic.
        self.channel = broadcaster.channel

    async def member_left(self, conn: Conn, room_id: int, username: str) -> None:
        await self._broadcaster.publish(conn, topic_of(room_id), {"left": username})

    async def room_deleted(self, conn: Conn, room_id: int) -> None:
        await self._broadcaster.publish(conn, topic_of(room_id), {"room_deleted": True})


async def expand_event(pool: asyncpg.Pool, event: Event) -> Event | None:
    """A message id into the message as the history shows it (None once it is gone);
    membership changes pass as they are, for `serve_room` to act on."""
    if "message_id" not in event:
        return event
    message_id: Any = event["message_id"]
    if type(message_id) is not int:
        return None
    message = await messages_store.message_by_id(pool, message_id)
    return message.model_dump(mode="json") if message is not None else None


# Application close codes (4000-4999): the HTTP status the same request would get now.
NOT_IN_ROOM = Ending(4403, "you are not in this room")
ROOM_GONE = Ending(4404, "room not found")


def verdict(event: Event, username: str) -> Ending | None:
    """What ends `username`'s stream at this event, if anything."""
    if event.get("room_deleted"):
        return ROOM_GONE
    if "left" in event and event["left"] == username:
        return NOT_IN_ROOM
    return None


REPLAY_PAGE = 100


async def serve_room(
    request: web.Request,
    broadcaster: Broadcaster,
    room_id: int,
    username: str,
    *,
    after: int | None = None,
) -> web.WebSocketResponse:
    """The room's messages; the stream ends, with a close code, when its user leaves
    the room or the room is deleted: a listener hears only what a member may.

    Subscribed first, then membership is checked, so a leave committed in between
    ends the stream rather than being missed. With `after`, the history newer than
    it is replayed first, read after subscribing: a message committed meanwhile is
    in the replay, the live stream, or both, and a live message whose id the replay
    already sent is dropped. Ids commit in order within a room (store.send_message,
    sends_store.send_messages), so nothing older than what was sent can still arrive."""
    pool = request.app[POOL_KEY]
    last_sent = after

    async def replay() -> AsyncIterator[Event]:
        nonlocal last_sent
        assert last_sent is not None
        while True:
            page = await messages_store.messages_newer(
                pool, room_id, after=last_sent, limit=REPLAY_PAGE
            )
            for message in page:
                last_sent = message.message_id
                yield message.model_dump(mode="json")
            if len(page) < REPLAY_PAGE:
                return

    def allow(event: Event) -> bool:
        if "message_id" not in event:
            return False
        return last_sent is None or event["message_id"] > last_sent

    async def start() -> Stream:
        await store.require_member(pool, room_id, username)
        return Stream(
            allow=allow,
            close_on=lambda event: verdict(event, username),
            replay=replay() if after is not None else None,
        )

    return await serve_websocket(request, broadcaster, topic_of(room_id), start)
