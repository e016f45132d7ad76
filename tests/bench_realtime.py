"""`make bench`, real time: 1,000 WebSocket clients in one chat room through the
gateway, then 500 on each of two chat replicas directly. For each: the delivery
latency of 50 messages (sent through HTTP, one every BENCH_RT_INTERVAL_S, p50/p99
over every delivery), the deliveries missed (must be 0), and the memory each socket
costs each process (RSS growth / sockets). Then the time for a process holding
1,000 open sockets to shut down cleanly on SIGTERM, and how many clients saw 1001.

Starts its own embedded Postgres, a gateway in front of one chat replica and two
more replicas (processes, as deployed); the clients run in this process, on the
same machine. Raises the file-descriptor limit first. Prints the table and writes
bench-results/realtime.md. BENCH_RT_SOCKETS (1000), BENCH_RT_MESSAGES (50) and
BENCH_RT_INTERVAL_S (0.2) size it.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from shared.embedded_pg import EmbeddedPostgres
from tests.bench_tools import spawn, until_ready

SOCKETS = int(os.environ.get("BENCH_RT_SOCKETS", "1000"))
MESSAGES = int(os.environ.get("BENCH_RT_MESSAGES", "50"))
INTERVAL_S = float(os.environ.get("BENCH_RT_INTERVAL_S", "0.2"))
PORT = {"gateway": 18280, "chat_a": 18281, "chat_b": 18282, "chat_c": 18283}
URL = {name: f"http://127.0.0.1:{port}" for name, port in PORT.items()}
CONNECT_BATCH = 50
DELIVERY_WAIT_S = 60.0


def raise_fd_limit(needed: int) -> int:
    """Every socket is a descriptor in the client and in each process it crosses."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} < {needed}: raise it (ulimit -Hn)")
    return target


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Listener:
    """One client socket: when each message reached it, and how it was closed."""

    received: dict[int, float] = field(default_factory=dict)
    close_code: int | None = None


async def listen(ws: aiohttp.ClientWebSocketResponse, listener: Listener) -> None:
    async for message in ws:
        if message.type == aiohttp.WSMsgType.TEXT:
            seq = int(json.loads(message.data)["message"].split()[-1])
            listener.received.setdefault(seq, time.perf_counter())
    listener.close_code = ws.close_code


async def open_sockets(
    session: aiohttp.ClientSession, url: str, count: int, headers: dict[str, str]
) -> tuple[list[Listener], list[asyncio.Task[None]]]:
    listeners: list[Listener] = []
    tasks: list[asyncio.Task[None]] = []
    for start in range(0, count, CONNECT_BATCH):
        batch = min(CONNECT_BATCH, count - start)
        sockets = await asyncio.gather(
            *(session.ws_connect(url, headers=headers, heartbeat=None) for _ in range(batch))
        )
        for ws in sockets:
            listener = Listener()
            listeners.append(listener)
            tasks.append(asyncio.create_task(listen(ws, listener)))
    return listeners, tasks


async def deliver(
    session: aiohttp.ClientSession,
    senders: list[str],
    room_id: int,
    headers: dict[str, str],
    listeners: list[Listener],
) -> tuple[list[float], int]:
    """Send MESSAGES through `senders` in turn; every delivery's latency, and how
    many deliveries never came."""
    sent_at: dict[int, float] = {}
    for seq in range(MESSAGES):
        sent_at[seq] = time.perf_counter()
        body = {"room_id": room_id, "message": f"bench {seq}"}
        url = f"{senders[seq % len(senders)]}/api/send_room_message"
        async with session.post(url, json=body, headers=headers) as response:
            assert response.status == 201, await response.text()
        await asyncio.sleep(INTERVAL_S)  # the sending pace, not a wait for a result
    expected = MESSAGES * len(listeners)
    deadline = time.perf_counter() + DELIVERY_WAIT_S
    while sum(len(lst.received) for lst in listeners) < expected:
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.05)  # polling for the last deliveries
    latencies = [at - sent_at[seq] for lst in listeners for seq, at in lst.received.items()]
    return latencies, expected - len(latencies)


async def shutdown(
    process: subprocess.Popen[bytes], listeners: list[Listener], tasks: list[asyncio.Task[None]]
) -> tuple[float, int]:
    """Seconds from SIGTERM to exit, and how many clients were closed with 1001."""
    started = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 60)
    seconds = time.perf_counter() - started
    await asyncio.wait(tasks, timeout=30)
    return seconds, sum(1 for lst in listeners if lst.close_code == 1001)


def row(name: str, latencies: list[float], missed: int, memory: dict[str, float]) -> str:
    per_socket = ", ".join(f"{proc} {kib:.1f} KiB" for proc, kib in memory.items())
    return (
        f"| {name} | {len(latencies)} | {percentile(latencies, 50) * 1000:.1f} ms"
        f" | {percentile(latencies, 99) * 1000:.1f} ms | {missed} | {per_socket} |"
    )


async def measure(processes: dict[str, subprocess.Popen[bytes]], tmp: Path) -> list[str]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for name in ("chat_a", "chat_b", "chat_c", "gateway"):
            await until_ready(session, f"{URL[name]}/healthz")
        account = {"username": "bench", "password": "bench-password"}
        async with session.post(f"{URL['gateway']}/auth/register", json=account) as r:
            headers = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
        async with session.post(
            f"{URL['gateway']}/api/create_room", json={"room_name": "Bench"}, headers=headers
        ) as r:
            room_id = (await r.json())["room_id"]
        path = f"/api/rooms/{room_id}/ws"
        # Replicas B and C learn the gateway's keys now: the gateway is stopped in part 1.
        for name in ("chat_b", "chat_c"):
            async with session.get(f"{URL[name]}/api/rooms", headers=headers) as r:
                assert r.status == 200, await r.text()
        lines = [
            f"{MESSAGES} messages, one every {INTERVAL_S} s, to one room; latency from"
            " sending to receipt by each client, over every delivery.",
            "",
            "| sockets | deliveries | p50 | p99 | missed | memory per socket |",
            "|---|---|---|---|---|---|",
        ]

        # 1. Every client through the gateway, to one chat replica.
        pids = {"gateway": processes["gateway"].pid, "chat": processes["chat_a"].pid}
        before = {name: rss_kib(pid) for name, pid in pids.items()}
        listeners, tasks = await open_sockets(session, URL["gateway"] + path, SOCKETS, headers)
        memory = {name: (rss_kib(pid) - before[name]) / SOCKETS for name, pid in pids.items()}
        latencies, missed = await deliver(session, [URL["gateway"]], room_id, headers, listeners)
        lines.append(row(f"{SOCKETS} through the gateway", latencies, missed, memory))
        gateway_exit = await shutdown(processes["gateway"], listeners, tasks)

        # 2. Half on each of two other replicas, directly; messages sent through both.
        half = SOCKETS // 2
        pids = {"chat B": processes["chat_b"].pid, "chat C": processes["chat_c"].pid}
        before = {name: rss_kib(pid) for name, pid in pids.items()}
        on_a, tasks_a = await open_sockets(session, URL["chat_b"] + path, half, headers)
        on_b, tasks_b = await open_sockets(session, URL["chat_c"] + path, half, headers)
        memory = {name: (rss_kib(pid) - before[name]) / half for name, pid in pids.items()}
        senders = [URL["chat_b"], URL["chat_c"]]
        latencies, missed = await deliver(session, senders, room_id, headers, on_a + on_b)
        lines.append(row(f"{half} on each of two replicas", latencies, missed, memory))
        for ws_task in tasks_a + tasks_b:
            ws_task.cancel()
        await asyncio.gather(*tasks_a, *tasks_b, return_exceptions=True)

        # 3. A replica holding every socket directly, then SIGTERM.
        listeners, tasks = await open_sockets(session, URL["chat_b"] + path, SOCKETS, headers)
        chat_exit = await shutdown(processes["chat_b"], listeners, tasks)

    lines += [
        "",
        "SIGTERM to a process holding the sockets (grace period 10 s):",
        "",
        "| process | open sockets | exit after | clients closed with 1001 |",
        "|---|---|---|---|",
        f"| gateway | {SOCKETS} clients + {SOCKETS} upstream | {gateway_exit[0]:.2f} s"
        f" | {gateway_exit[1]} |",
        f"| chat replica | {SOCKETS} | {chat_exit[0]:.2f} s | {chat_exit[1]} |",
    ]
    return lines


def main() -> None:
    limit = raise_fd_limit(4 * SOCKETS + 256)
    with tempfile.TemporaryDirectory(prefix="bench-realtime-") as tmp_name:
        tmp = Path(tmp_name)
        pg = EmbeddedPostgres(tmp / "pg")
        dsn = pg.start()
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            env = {**os.environ, "DATABASE_URL": dsn, "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
            jwks = f"{URL['gateway']}/.well-known/jwks.json"
            for name in ("chat_a", "chat_b", "chat_c"):
                chat_env = {**env, "PORT": str(PORT[name]), "JWKS_URL": jwks}
                processes[name] = spawn(tmp, name, "chat_service", chat_env)
            gateway_env = {
                **env,
                "PORT": str(PORT["gateway"]),
                "CHAT_URL": URL["chat_a"],
                "MEETING_URL": URL["chat_a"],
                "JWT_KEY_DIR": str(tmp),
                "ACCESS_TOKEN_TTL_S": "7200",
                "BCRYPT_ROUNDS": "4",
            }
            processes["gateway"] = spawn(tmp, "gateway", "gateway", gateway_env)
            lines = asyncio.run(measure(processes, tmp))
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in processes.values():
                process.wait(timeout=30)
            pg.stop()
    report = "\n".join(["# Real time", "", *lines, "", f"(RLIMIT_NOFILE raised to {limit}.)", ""])
    print(report)
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "realtime.md").write_text(report)


if __name__ == "__main__":
    main()
