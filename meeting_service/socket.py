"""The room WebSocket, two-way: the room's live events out, signal / media / hand
frames in. Subscribed first, then authorized and registered (presence), then the
snapshot, then live events, so nothing committed in between is missed."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from pydantic import TypeAdapter, ValidationError

from meeting_service import media_store, presence_store, signals_store
from meeting_service.events import RoomView
from meeting_service.frames import (
    SIGNAL_DATA_MAX,
    ClientFrame,
    ErrorFrame,
    HandFrame,
    MediaFrame,
    RoomSnapshot,
    SignalFrame,
)
from meeting_service.presence import REPLICA_KEY
from meeting_service.refusals import Refusal, Refused
from meeting_service.settings import SETTINGS_KEY
from shared.auth import identity_of
from shared.db import POOL_KEY
from shared.error_codes import code_of
from shared.ids import new_id
from shared.realtime import REALTIME_KEY, Event
from shared.websockets import Stream, serve_websocket

log = logging.getLogger(__name__)

INVALID = "Invalid message"
TOO_MANY = "Too many messages"
TOO_LARGE = f"Signal data is larger than {SIGNAL_DATA_MAX} bytes"
FAULT = "internal error"
FRAMES: TypeAdapter[SignalFrame | MediaFrame | HandFrame] = TypeAdapter(ClientFrame)


class FrameBudget:
    """A token bucket: `rate` frames a second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _ref(raw: Any) -> str | int | None:
    ref = raw.get("ref") if isinstance(raw, dict) else None
    return ref if isinstance(ref, str | int) and not isinstance(ref, bool) else None


class RoomSocket:
    """One client's socket on one room."""

    def __init__(self, request: web.Request, room_id: str) -> None:
        app = request.app
        self.pool = app[POOL_KEY]
        self.events = app[REALTIME_KEY]
        self.replica_id = app[REPLICA_KEY]
        self.who = identity_of(request)
        self.room_id = room_id
        self.socket_id = new_id()
        self.registered = False
        settings = app[SETTINGS_KEY]
        self.budget = FrameBudget(settings.socket_frame_rate, settings.socket_frame_burst)
        self.strikes = FrameBudget(1.0, settings.socket_abuse_limit)
        self.view: RoomView | None = None

    async def start(self) -> Stream:
        opened = await presence_store.open_socket(
            self.pool, self.events, self.replica_id, self.socket_id, self.who, self.room_id
        )
        self.registered = True
        me = opened.self_
        self.view = view = RoomView(me.id, me.is_host, me.status)
        snapshot = RoomSnapshot(self_=me, room=opened.room, participants=opened.participants)

        async def replay() -> AsyncIterator[Event]:
            yield snapshot.model_dump(mode="json", by_alias=True)

        return Stream(
            allow=view.allow,
            close_on=view.close_on,
            shape=view.shape,
            replay=replay(),
            on_message=self.on_message,
        )

    async def close(self) -> None:
        if self.registered:
            await presence_store.close_socket(self.pool, self.events, self.socket_id)

    async def on_message(self, ws: web.WebSocketResponse, message: WSMessage) -> None:
        raw: Any = None
        if message.type == WSMsgType.TEXT:
            try:
                raw = json.loads(message.data)
            except (ValueError, RecursionError):
                raw = None
        ref = _ref(raw)
        if not self.budget.take():
            if not self.strikes.take():
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too many messages")
                return
            await self._refuse(ws, TOO_MANY, ref)
            return
        try:
            frame = FRAMES.validate_python(raw)
        except ValidationError:
            await self._refuse(ws, INVALID, ref)
            return
        try:
            await self._handle(frame)
        except Refused as refused:
            await self._refuse(ws, refused.refusal.value, ref)
        except _Invalid as invalid:
            await self._refuse(ws, str(invalid), ref)
        except Exception:
            # Never the frame itself in the log: a signal may carry addresses.
            log.exception("room socket frame failed", extra={"frame_type": frame.type})
            await self._refuse(ws, FAULT, ref)

    async def _handle(self, frame: SignalFrame | MediaFrame | HandFrame) -> None:
        assert self.view is not None
        me = self.view.participant_id
        if self.view.status != "joined":
            raise Refused(Refusal.NOT_IN_ROOM)
        if isinstance(frame, SignalFrame):
            size = len(json.dumps(frame.data, separators=(",", ":"), ensure_ascii=False).encode())
            if size > SIGNAL_DATA_MAX:
                raise _Invalid(TOO_LARGE)
            await signals_store.send_signal(
                self.pool, self.events, self.room_id, me, frame.to, frame.kind, frame.data
            )
        elif isinstance(frame, MediaFrame):
            changes = frame.changes()
            if not changes:
                raise _Invalid(INVALID)
            await media_store.set_media(self.pool, self.events, self.room_id, me, changes)
        else:
            await media_store.set_hand(self.pool, self.events, self.room_id, me, frame.raised)

    async def _refuse(self, ws: web.WebSocketResponse, error: str, ref: str | int | None) -> None:
        code = code_of(400, error) or "error"
        frame = ErrorFrame(error=error, code=code, ref=ref).model_dump(
            mode="json", exclude_none=True
        )
        if not ws.closed:
            await ws.send_json(frame)


class _Invalid(Exception):
    """A frame well-formed as JSON that the socket still cannot take."""


async def serve_room_socket(request: web.Request, room_id: str) -> web.StreamResponse:
    socket = RoomSocket(request, room_id)
    try:
        return await serve_websocket(request, socket.events, room_id, socket.start)
    finally:
        await socket.close()
