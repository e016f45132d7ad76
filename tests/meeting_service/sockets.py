"""Helpers for the room WebSocket tests: wait for frames, never sleep."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from tests.conftest import bearer

TIMEOUT = 10  # an upper bound on waiting for a frame, not a timing assumption
PRESENCE = frozenset({"participant.connected", "participant.disconnected"})


async def next_frame(ws: Any) -> dict[str, Any]:
    frame: dict[str, Any] = await ws.receive_json(timeout=TIMEOUT)
    return frame


async def next_event(ws: Any, skip: frozenset[str] = PRESENCE | {"room.snapshot"}) -> Any:
    """The next frame whose type is not in `skip` (presence comes and goes)."""
    while True:
        frame = await next_frame(ws)
        if frame.get("type") not in skip:
            return frame


async def wait_for(ws: Any, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Frames until one matches; those before it are dropped."""
    while True:
        frame = await next_frame(ws)
        if match(frame):
            return frame


async def closed(ws: Any) -> aiohttp.WSMessage:
    """Read until the server closes the socket; the close message."""
    while True:
        message = await ws.receive(timeout=TIMEOUT)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return message


async def ending(ws: Any) -> tuple[dict[str, Any], aiohttp.WSMessage]:
    """Read until the server closes the socket: the last text frame before the
    close (the event that ended the stream), and the close message."""
    last: dict[str, Any] = {}
    while True:
        message = await ws.receive(timeout=TIMEOUT)
        if message.type == aiohttp.WSMsgType.TEXT:
            last = json.loads(message.data)
        elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return last, message


@contextlib.asynccontextmanager
async def room_socket(
    client: Any, room_id: str, token: str, **kwargs: Any
) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """A room socket and its first frame, the snapshot. `client` is a TestClient
    (gateway or service) or a ClientSession with an absolute URL prefix in kwargs."""
    base = kwargs.pop("base", "")
    async with client.ws_connect(f"{base}/rooms/{room_id}/ws", headers=bearer(token)) as ws:
        snapshot = await next_frame(ws)
        assert snapshot["type"] == "room.snapshot", snapshot
        yield ws, snapshot


async def until_type(ws: Any, kind: str) -> list[dict[str, Any]]:
    """Every frame up to and including the first of type `kind`. Events committed
    before a socket subscribed may still arrive first: they are in the list."""
    frames = []
    while True:
        frame = await next_frame(ws)
        frames.append(frame)
        if frame.get("type") == kind:
            return frames


async def next_of_type(ws: Any, kind: str) -> dict[str, Any]:
    return (await until_type(ws, kind))[-1]
