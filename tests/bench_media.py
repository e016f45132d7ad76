"""`make bench`, meeting media: signal relay latency (send to receipt, through the
gateway) between two sockets on one meeting replica and on two replicas, small
signals (in the notification) and large ones (through the signals table), and the
time for a 6-person aiortc mesh (15 peer connections) to be fully connected.

Starts its own embedded Postgres, two meeting replicas and a gateway in front of
each (processes, as deployed; the replicas' frame budget is lifted, since a
one-at-a-time latency loop is not what it guards against). Prints the table and
writes it to bench-results/media.md. BENCH_SIGNALS (300) and BENCH_MESHES (3) size it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from shared.embedded_pg import EmbeddedPostgres
from tests.bench_tools import spawn, until_ready
from tests.webrtc import ice_configuration, mesh_connected, peer

SIGNALS = int(os.environ.get("BENCH_SIGNALS", "300"))
MESHES = int(os.environ.get("BENCH_MESHES", "3"))
PORT = {"gateway_a": 18180, "meeting_a": 18182, "gateway_b": 18185, "meeting_b": 18186}
URL = {name: f"http://127.0.0.1:{port}" for name, port in PORT.items()}
SMALL = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host", "sdpMid": "0"}
LARGE = {
    "type": "offer",
    "sdp": "a=candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host\r\n" * 300,
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def token(session: aiohttp.ClientSession, name: str, *, user: bool = False) -> str:
    if user:
        body = {"username": name, "password": "bench-password"}
        async with session.post(f"{URL['gateway_a']}/auth/register", json=body) as response:
            data = await response.json()
    else:
        body = {"displayName": name}
        async with session.post(f"{URL['gateway_a']}/auth/guest", json=body) as response:
            data = await response.json()
    access: str = data["access_token"]
    return access


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def room_with(session: aiohttp.ClientSession, host: str, guests: list[str]) -> str:
    async with session.post(f"{URL['gateway_a']}/rooms", json={}, headers=bearer(host)) as r:
        room = await r.json()
    for guest in guests:
        async with session.post(
            f"{URL['gateway_a']}/rooms/code/{room['code']}/join", headers=bearer(guest)
        ) as r:
            assert r.status == 200, await r.text()
    room_id: str = room["id"]
    return room_id


async def relay_latency(
    session: aiohttp.ClientSession, room_id: str, tokens: list[str], gateways: list[str], data: Any
) -> list[float]:
    """Milliseconds from send to receipt, one signal in flight at a time."""
    sockets = []
    async with contextlib.AsyncExitStack() as stack:
        for value, gateway in zip(tokens, gateways, strict=True):
            ws = await stack.enter_async_context(
                session.ws_connect(f"{gateway}/rooms/{room_id}/ws", headers=bearer(value))
            )
            sockets.append((ws, (await ws.receive_json())["self"]["id"]))
        (sender, _), (receiver, receiver_id) = sockets
        frame = {"type": "signal", "to": receiver_id, "kind": "offer", "data": data}
        samples = []
        for _ in range(SIGNALS):
            started = time.perf_counter()
            await sender.send_json(frame)
            while (await receiver.receive_json())["type"] != "signal":
                pass
            samples.append((time.perf_counter() - started) * 1000)
        return samples


async def mesh_seconds(session: aiohttp.ClientSession, room_id: str, tokens: list[str]) -> float:
    config = ice_configuration(None)
    url = f"{URL['gateway_a']}/rooms/{room_id}/ws"
    async with contextlib.AsyncExitStack() as stack:
        started = time.perf_counter()
        peers = []
        for value in tokens:
            newcomer = await stack.enter_async_context(peer(session, url, bearer(value), config))
            for other in newcomer.others_present():
                await newcomer.call(other)
            peers.append(newcomer)
        await mesh_connected(peers)
        return time.perf_counter() - started


async def measure() -> list[str]:
    async with aiohttp.ClientSession() as session:
        for name in ("gateway_a", "gateway_b", "meeting_a", "meeting_b"):
            await until_ready(session, f"{URL[name]}/healthz")
        host = await token(session, "bench_host", user=True)
        guests = [await token(session, f"guest {i}") for i in range(6)]
        rows = []
        for label, gateways in (
            ("same replica", [URL["gateway_a"], URL["gateway_a"]]),
            ("two replicas", [URL["gateway_a"], URL["gateway_b"]]),
        ):
            for size, data in (
                ("small (in the notification)", SMALL),
                ("20 KB (via table)", LARGE),
            ):
                room_id = await room_with(session, host, guests[:1])
                samples = await relay_latency(session, room_id, [host, guests[0]], gateways, data)
                rows.append(
                    f"| {label} | {size} | {percentile(samples, 50):.2f} |"
                    f" {percentile(samples, 99):.2f} | {len(samples)} |"
                )
        meshes = []
        for _ in range(MESHES):
            room_id = await room_with(session, host, guests[:5])
            meshes.append(await mesh_seconds(session, room_id, [host, *guests[:5]]))
    return [
        "| signal relay | size | p50 ms | p99 ms | signals |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"6-person aiortc mesh (15 peer connections) fully connected, each with a data"
        f" message both ways: median {statistics.median(meshes):.2f} s"
        f" (runs: {', '.join(f'{m:.2f}' for m in meshes)})",
    ]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp_name:
        tmp = Path(tmp_name)
        pg = EmbeddedPostgres(tmp / "pg")
        dsn = pg.start()
        children: list[subprocess.Popen[bytes]] = []
        try:
            env = {**os.environ, "DATABASE_URL": dsn, "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
            jwks = f"{URL['gateway_a']}/.well-known/jwks.json"
            for side in ("a", "b"):
                children.append(
                    spawn(
                        tmp,
                        f"meeting_{side}",
                        "meeting_service",
                        {
                            **env,
                            "PORT": str(PORT[f"meeting_{side}"]),
                            "JWKS_URL": jwks,
                            "SOCKET_FRAME_RATE": "100000",
                            "SOCKET_FRAME_BURST": "100000",
                        },
                    )
                )
                gateway_env = {
                    **env,
                    "PORT": str(PORT[f"gateway_{side}"]),
                    "MEETING_URL": URL[f"meeting_{side}"],
                    "JWT_KEY_DIR": str(tmp),
                    "ACCESS_TOKEN_TTL_S": "7200",
                }
                children.append(spawn(tmp, f"gateway_{side}", "gateway", gateway_env))
                if side == "a":
                    # The second gateway reads the key the first one made.
                    asyncio.run(_ready(f"{URL['gateway_a']}/healthz"))
            lines = asyncio.run(measure())
        finally:
            for child in children:
                child.terminate()
            for child in children:
                child.wait(timeout=30)
            pg.stop()
    report = "\n".join(["# Meeting media", "", *lines, ""])
    print(report)
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "media.md").write_text(report)


async def _ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        await until_ready(session, url)


if __name__ == "__main__":
    main()
