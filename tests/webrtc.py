"""Real WebRTC peers (aiortc) that signal over the meeting room's WebSocket, the way a
browser client does: the later joiner offers to everyone already connected, the
others answer, ICE candidates trickle as `candidate` signals, a data channel per pair."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from tests.meeting_service.sockets import TIMEOUT

CONNECT_TIMEOUT = 60  # an upper bound on reaching `connected`, not a timing assumption


def split_candidates(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """The SDP without its candidates, and the candidates as trickle signals."""
    kept, candidates = [], []
    mline, mid = -1, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            mline, mid = mline + 1, None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        if line.startswith("a=candidate:"):
            candidates.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": mline})
            continue
        if line == "a=end-of-candidates":
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n", candidates


def ice_configuration(ice: dict[str, Any] | None, relay_only: bool = False) -> RTCConfiguration:
    servers = [
        RTCIceServer(
            urls=entry["urls"], username=entry.get("username"), credential=entry.get("credential")
        )
        for entry in (ice or {}).get("iceServers", [])
    ]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers or None, iceTransportPolicy=policy)


class Peer:
    """One participant's browser: a socket, and a peer connection per other participant."""

    def __init__(self, ws: Any, snapshot: dict[str, Any], config: RTCConfiguration) -> None:
        self.ws = ws
        self.id: str = snapshot["self"]["id"]
        self.snapshot = snapshot
        self.config = config
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.connected: dict[str, asyncio.Event] = {}
        self.channels: dict[str, asyncio.Future[RTCDataChannel]] = {}
        self.inbox: dict[str, asyncio.Queue[str]] = {}
        self.errors: list[dict[str, Any]] = []
        self.arrived: collections.defaultdict[str, asyncio.Event] = collections.defaultdict(
            asyncio.Event
        )
        self._reader: asyncio.Task[None] | None = None

    def others_present(self) -> list[str]:
        return [
            p["id"]
            for p in self.snapshot["participants"]
            if p["id"] != self.id and p["connected"] and p["status"] == "joined"
        ]

    def _pc(self, other: str) -> RTCPeerConnection:
        pc = RTCPeerConnection(self.config)
        self.pcs[other] = pc
        self.connected[other] = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.channels[other] = loop.create_future()
        self.inbox[other] = asyncio.Queue()
        self.arrived[other].set()

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected":
                self.connected[other].set()

        @pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            self._attach(other, channel)

        return pc

    def _attach(self, other: str, channel: RTCDataChannel) -> None:
        channel.on("message", self.inbox[other].put_nowait)
        future = self.channels[other]

        def opened() -> None:
            if not future.done():
                future.set_result(channel)

        if channel.readyState == "open":
            opened()
        else:
            channel.on("open", opened)

    async def _signal(self, to: str, kind: str, data: dict[str, Any]) -> None:
        await self.ws.send_json({"type": "signal", "to": to, "kind": kind, "data": data})

    async def _describe(self, to: str, description: RTCSessionDescription) -> None:
        sdp, candidates = split_candidates(description.sdp)
        await self._signal(to, description.type, {"type": description.type, "sdp": sdp})
        for candidate in candidates:
            await self._signal(to, "candidate", candidate)
        await self._signal(to, "candidate", {"candidate": "", "sdpMid": None, "sdpMLineIndex": 0})

    async def call(self, other: str) -> None:
        pc = self._pc(other)
        self._attach(other, pc.createDataChannel("chat"))
        await pc.setLocalDescription(await pc.createOffer())
        await self._describe(other, pc.localDescription)

    async def _on_signal(self, frame: dict[str, Any]) -> None:
        sender, kind, data = frame["from"], frame["kind"], frame["data"]
        if kind == "offer":
            pc = self._pc(sender)
            await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self._describe(sender, pc.localDescription)
        elif kind == "answer":
            await self.pcs[sender].setRemoteDescription(
                RTCSessionDescription(data["sdp"], "answer")
            )
        elif not data["candidate"]:
            await self.pcs[sender].addIceCandidate(None)
        else:
            candidate = candidate_from_sdp(data["candidate"].split(":", 1)[1])
            candidate.sdpMid = data["sdpMid"]
            candidate.sdpMLineIndex = data["sdpMLineIndex"]
            await self.pcs[sender].addIceCandidate(candidate)

    async def _read(self) -> None:
        async for message in self.ws:
            frame = message.json()
            if frame["type"] == "signal":
                await self._on_signal(frame)
            elif frame["type"] == "error":
                self.errors.append(frame)

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def wait_connected(self, other: str) -> RTCDataChannel:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await self.arrived[other].wait()
            await self.connected[other].wait()
            return await self.channels[other]

    async def receive(self, other: str) -> str:
        async with asyncio.timeout(TIMEOUT):
            return await self.inbox[other].get()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await asyncio.gather(*(pc.close() for pc in self.pcs.values()))


@contextlib.asynccontextmanager
async def peer(
    session: Any, url: str, headers: dict[str, str], config: RTCConfiguration
) -> AsyncIterator[Peer]:
    """A peer on the room socket at `url`: snapshot read, frames being handled."""
    async with session.ws_connect(url, headers=headers) as ws:
        snapshot = await ws.receive_json(timeout=TIMEOUT)
        assert snapshot["type"] == "room.snapshot"
        joined = Peer(ws, snapshot, config)
        joined.start()
        try:
            yield joined
        finally:
            await joined.close()


async def mesh_connected(peers: list[Peer]) -> None:
    """Every pair connected, and a data-channel message each way on each pair."""
    for a in peers:
        for b in peers:
            if a is not b:
                channel = await a.wait_connected(b.id)
                channel.send(f"{a.id}->{b.id}")
    for a in peers:
        for b in peers:
            if a is not b:
                assert await a.receive(b.id) == f"{b.id}->{a.id}"
    assert [p.errors for p in peers] == [[] for _ in peers]
