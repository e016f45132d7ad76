"""`make bench`: throughput and latency of a fresh system, with wrk.

Starts the embedded Postgres and the three processes on temporary data and
spare ports, seeds a user, a chat room with messages and a meeting room, then
runs wrk against each scenario, directly at a service and through the
gateway, so the proxy's cost shows. Results go to stdout and bench-results/.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DURATION = os.environ.get("BENCH_DURATION", "10s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "50")
PORTS = {"GATEWAY_PORT": "18080", "CHAT_PORT": "18081", "MEETING_PORT": "18082"}
GATEWAY = f"http://127.0.0.1:{PORTS['GATEWAY_PORT']}"
CHAT = f"http://127.0.0.1:{PORTS['CHAT_PORT']}"


def call(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(
        url, method=method, data=json.dumps(body).encode() if body else None
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def wait_ready() -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if call("GET", f"{GATEWAY}/readyz").get("status") == "ready":
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the system did not become ready")


def wrk(name: str, url: str, token: str, script: Path | None = None) -> dict[str, str]:
    command = [
        "wrk",
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{DURATION}",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"50%\s+([\d.]+\w+)", output)
    p99 = re.search(r"99%\s+([\d.]+\w+)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "scenario": name,
        "req/s": rps.group(1) if rps else "?",
        "p50": p50.group(1) if p50 else "?",
        "p99": p99.group(1) if p99 else "?",
        "non-2xx": errors.group(1) if errors else "0",
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rooms-bench-") as tmp:
        env = {**os.environ, **PORTS, "DATA_DIR": tmp, "LOG_LEVEL": "WARNING"}
        env.pop("DATABASE_URL", None)
        system = subprocess.Popen([sys.executable, "-m", "shared.dev"], env=env)
        try:
            wait_ready()
            session = call(
                "POST",
                f"{GATEWAY}/auth/register",
                {"username": "bench", "password": "bench-password"},
            )
            token = session["access_token"]
            room = call(
                "POST", f"{GATEWAY}/api/create_room", {"room_name": "bench", "is_private": 0}, token
            )
            for i in range(200):
                call(
                    "POST",
                    f"{GATEWAY}/api/send_room_message",
                    {"room_id": room["room_id"], "message": f"m{i}"},
                    token,
                )
            meeting = call("POST", f"{GATEWAY}/rooms", {"name": "bench"}, token)
            post = Path(tmp) / "post.lua"
            post.write_text(
                'wrk.method = "POST"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.body = \'{{"room_id": {room["room_id"]}, "message": "hello from wrk"}}\'\n'
            )
            history = f"/api/get_room_messages?room_id={room['room_id']}&limit=50"
            results = [
                wrk("gateway GET /healthz (no upstream)", f"{GATEWAY}/healthz", token),
                wrk("chat direct: 50 messages of history", CHAT + history, token),
                wrk("gateway: 50 messages of history", GATEWAY + history, token),
                wrk("chat direct: send a message", f"{CHAT}/api/send_room_message", token, post),
                wrk("gateway: send a message", f"{GATEWAY}/api/send_room_message", token, post),
                wrk(
                    "gateway: meeting lookup by code",
                    f"{GATEWAY}/rooms/code/{meeting['code']}",
                    token,
                ),
            ]
        finally:
            system.send_signal(signal.SIGTERM)
            system.wait(timeout=60)
    header = f"{'scenario':<40} {'req/s':>10} {'p50':>10} {'p99':>10} {'non-2xx':>8}"
    lines = [header] + [
        f"{r['scenario']:<40} {r['req/s']:>10} {r['p50']:>10} {r['p99']:>10} {r['non-2xx']:>8}"
        for r in results
    ]
    report = "\n".join(lines)
    print(
        f"\nwrk -t2 -c{CONNECTIONS} -d{DURATION}, {os.cpu_count()} cores"
        " shared by wrk, Postgres and all processes\n"
    )
    print(report)
    Path("bench-results").mkdir(exist_ok=True)
    Path("bench-results/latest.txt").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
