"""What `make bench` measures with: processes whose CPU time is read from /proc,
wrk and pgbench runs parsed into numbers, and nginx as the reference proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp

TICK = os.sysconf("SC_CLK_TCK")
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def call(
    method: str, url: str, body: dict[str, object] | None = None, token: str | None = None
) -> dict[str, object]:
    request = urllib.request.Request(
        url, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, object] = json.loads(response.read() or b"{}")
        return answer


def wait_for(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and of its direct children (nginx and gunicorn workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state(0) ppid(1) ... utime(11) stime(12).
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


@dataclass
class Run:
    requests: int
    rps: float
    p50_s: float
    p99_s: float
    non_2xx: int
    errors: int


def _duration(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(\w+)", text)
    assert match, text
    return float(match.group(1)) * UNITS[match.group(2)]


def wrk(
    url: str,
    *,
    duration: str,
    connections: int = 32,
    token: str | None = None,
    script: Path | None = None,
) -> Run:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    requests = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not (requests and rps and p50 and p99):
        raise RuntimeError(f"wrk said:\n{out}")
    if non_2xx or errors:
        print(f"  {url}: {non_2xx and non_2xx.group(0)} {errors and errors.group(0)}", flush=True)
    return Run(
        requests=int(requests.group(1)),
        rps=float(rps.group(1)),
        p50_s=_duration(p50.group(1)),
        p99_s=_duration(p99.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def wrk_script(path: Path, method: str, body: str) -> Path:
    path.write_text(
        f'wrk.method = "{method}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [[{body}]]\n"
    )
    return path


def pgbench(
    dsn: str,
    script: Path,
    *,
    duration_s: int,
    clients: int,
    schema: str,
    variables: dict[str, str] | None = None,
) -> float:
    """Transactions per second of `script`, prepared statements like asyncpg's; its
    `:name`s are `variables`, sent as parameters as asyncpg sends them."""
    env = {**os.environ, "PGOPTIONS": f"-c search_path={schema}"}
    done = subprocess.run(
        [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            f"-c{clients}",
            "-j1",
            f"-T{duration_s}",
            *(f"-D{name}={value}" for name, value in (variables or {}).items()),
            "-f",
            str(script),
            dsn,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    out = done.stdout
    tps = re.search(r"tps = ([\d.]+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if done.returncode or not tps or (failed and int(failed.group(1))):
        raise RuntimeError(f"pgbench said:\n{out}{done.stderr}")
    return float(tps.group(1))


def nginx_conf(tmp: Path, port: int, upstream_port: int) -> Path:
    """nginx as the issue describes it: one worker, proxy_pass to a keepalive upstream,
    an access log line a request (as the gateway writes one)."""
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / name).mkdir(exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream meeting {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://meeting;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    )
    return conf


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def spawn(tmp: Path, name: str, module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (tmp / f"{name}.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", module], env=env, stdout=log, stderr=log)


async def until_ready(session: aiohttp.ClientSession, url: str) -> None:
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)  # polling for readiness
