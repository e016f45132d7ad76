"""`make bench`: every figure of issue 9 as a ratio against a reference measured
in the same run, interleaved, the median of several short rounds.

Starts the embedded Postgres, the three processes (as `make run` does, access
logs on, written to a file), nginx in front of the meeting service, the Flask
reference of the chat document's origin (tests/bench_flask.py) and pgbench on
the same database. CPU per request is the process's utime+stime delta over a
wrk run (/proc/PID/stat) divided by the requests it served. Prints the table,
writes it to bench-results/latest.md and the raw rounds to bench-results/rounds.json.

BENCH_ROUNDS (5), BENCH_SECONDS (3) and BENCH_HISTORY_ROWS (1,000,000: the
issue's 10M scaled down tenfold, with 1/20 of it then sent to another room)
size the run; BENCH_ONLY=proxy,chat,writes,origin,history,logins picks scenarios;
BENCH_PORT_BASE (18080) moves its ports.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from chat_service.events import CHANNEL
from chat_service.store import SEND_MESSAGE_AND_NOTIFY
from meeting_service.rooms_store import CREATE_ROOM
from shared.db import migrate
from shared.embedded_pg import EmbeddedPostgres
from tests.bench_tools import (
    call,
    cpu_seconds,
    median,
    nginx_conf,
    pgbench,
    wait_for,
    wrk,
    wrk_script,
)

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
ONLY = set(os.environ.get("BENCH_ONLY", "proxy,chat,writes,origin,history,logins").split(","))
HISTORY_ROWS = int(os.environ.get("BENCH_HISTORY_ROWS", "1000000")) if "history" in ONLY else 0
DURATION = f"{SECONDS}s"
PGBENCH_CLIENTS = 10  # the services' pool size (DB_POOL_MAX_SIZE)
# BENCH_PORT_BASE moves them all, so that two runs on one machine do not collide.
BASE = int(os.environ.get("BENCH_PORT_BASE", "18080"))
PORT = {
    "gateway": BASE,
    "chat": BASE + 1,
    "meeting": BASE + 2,
    "chat_metrics": BASE + 3,
    "meeting_metrics": BASE + 4,
    "nginx": BASE + 10,
    "flask": BASE + 11,
}
URL = {name: f"http://127.0.0.1:{port}" for name, port in PORT.items()}
CHAT_MIGRATIONS = Path(__file__).parent.parent / "chat_service" / "migrations"
PASSWORD = "bench-password"

# A new id and a new code per transaction, as the service draws them.
NEW_ID = "('c' || substr(md5(random()::text), 1, 24))"
NEW_CODE = (
    "(SELECT substr(x, 1, 3) || '-' || substr(x, 4, 3) || '-' || substr(x, 7, 3)"
    " FROM (SELECT translate(md5(random()::text), '0123456789', 'ghijklmnop') AS x) s)"
)


def create_room_sql() -> str:
    """The very statement the meeting service sends for POST /rooms (its rooms_store),
    the drawn ids and code made in SQL, the rest pgbench's variables."""
    values = [NEW_ID, NEW_CODE, ":name", ":user_id", ":display_name", "NULL", NEW_ID]
    values += ["false", "50", NEW_ID]
    sql = CREATE_ROOM
    for number in range(len(values), 0, -1):  # $10 before $1
        sql = sql.replace(f"${number}", values[number - 1])
    return sql + ";\n"


def send_message_sql() -> str:
    """The very statement the chat service sends (chat_service.store), its parameters
    pgbench's variables: one statement, its own transaction."""
    sql = SEND_MESSAGE_AND_NOTIFY
    for number, name in enumerate(("room_id", "username", "body", "channel"), 1):
        sql = sql.replace(f"${number}", f":{name}")
    return sql + ";\n"


class System:
    """The processes under test and the references, started on temporary data."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pids: dict[str, int] = {}
        self.children: list[subprocess.Popen[bytes]] = []
        self.pg = EmbeddedPostgres(tmp / "pg")
        self.dsn = ""

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        child = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self.children.append(child)
        self.pids[name] = child.pid

    def start(self) -> None:
        self.dsn = self.pg.start()
        asyncio.run(without_commit_wait(self.dsn))
        env = {**os.environ, "DATABASE_URL": self.dsn, "HOST": "127.0.0.1"}
        jwks = f"{URL['gateway']}/.well-known/jwks.json"
        self.spawn(
            "gateway",
            [sys.executable, "-m", "gateway"],
            {
                **env,
                "PORT": str(PORT["gateway"]),
                "CHAT_URL": URL["chat"],
                "MEETING_URL": URL["meeting"],
                "JWT_KEY_DIR": str(self.tmp),
                "ACCESS_TOKEN_TTL_S": "7200",
            },
        )
        for name in ("chat", "meeting"):
            service_env = {
                **env,
                "PORT": str(PORT[name]),
                "JWKS_URL": jwks,
                "METRICS_HOST": "127.0.0.1",
                "METRICS_PORT": str(PORT[f"{name}_metrics"]),
            }
            self.spawn(name, [sys.executable, "-m", f"{name}_service"], service_env)
        conf = nginx_conf(self.tmp, PORT["nginx"], PORT["meeting"])
        self.spawn("nginx", ["nginx", "-c", str(conf), "-p", str(self.tmp)], env)
        wait_for(f"{URL['gateway']}/readyz")
        # The gateway's own readiness, and both services' through it (?upstreams);
        # a process that died at start (a port in use) ends the run, with its log.
        deadline = time.monotonic() + 60
        while True:
            ready = call("GET", f"{URL['gateway']}/readyz?upstreams")
            if ready.get("status") == "ready" and all(ready.get("upstreams", {}).values()):
                break
            children = zip(self.pids, self.children, strict=True)
            dead = [name for name, child in children if child.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the system did not start (exited: {dead or 'none'}): see {self.tmp}/*.log"
                )
            time.sleep(0.1)

    def start_flask(self) -> None:
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.spawn(
            "flask",
            [
                gunicorn,
                "-w2",
                "-k",
                "gthread",
                "--threads",
                "4",
                "-b",
                f"127.0.0.1:{PORT['flask']}",
                "--access-logfile",
                str(self.tmp / "flask-access.log"),
                "tests.bench_flask:app",
            ],
            {**os.environ, "FLASK_REF_DSN": self.dsn, "FLASK_REF_THREADS": "4"},
        )
        wait_for(f"{URL['flask']}/api/get_room_messages")

    def stop(self) -> None:
        for child in self.children:
            child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        self.pg.stop()


async def without_commit_wait(dsn: str) -> None:
    """The bench measures CPU, not this machine's shared disk: commits do not wait for
    the WAL flush (fsync stays on), for pgbench and the services alike."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


async def seed_database(dsn: str, rooms: dict[str, int], flask_token: str) -> int:
    """The Flask reference's tables and room; the history rooms' rows. Returns its room id."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, "flaskref", CHAT_MIGRATIONS)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS flaskref.tokens (token text PRIMARY KEY, username text)"
        )
        await conn.execute("INSERT INTO flaskref.tokens VALUES ($1, 'bench')", flask_token)
        room: int = await conn.fetchval(
            "INSERT INTO flaskref.rooms (name, is_private, creator)"
            " VALUES ('bench', false, 'bench') RETURNING id"
        )
        await conn.execute("INSERT INTO flaskref.room_members VALUES ($1, 'bench')", room)
        await conn.execute(
            "INSERT INTO flaskref.room_messages (room_id, username, body)"
            " SELECT $1, 'bench', 'm' || i FROM generate_series(1, 200) i",
            room,
        )
        # The shape of the issue: a big room, then a twentieth of it to another room,
        # then the small room's 1,000 (the newest). Autovacuum would analyze these.
        for name, rows in (
            ("big", HISTORY_ROWS),
            ("other", HISTORY_ROWS // 20),
            ("small", 1000),
        ):
            await conn.execute(
                "INSERT INTO chat.room_messages (room_id, username, body)"
                " SELECT $1, 'bench', 'message ' || i FROM generate_series(1, $2) i",
                rooms[name],
                rows,
            )
        await conn.execute("ANALYZE chat.room_messages")
        return room
    finally:
        await conn.close()


def per_request(pid: int, run: Callable[[], Any]) -> tuple[Any, float]:
    before = cpu_seconds(pid)
    result = run()
    return result, (cpu_seconds(pid) - before) / max(result.requests, 1)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rooms-bench-") as tmp_name:
        tmp = Path(tmp_name)
        system = System(tmp)
        try:
            system.start()
            rounds = run_all(system, tmp)
            batches = batch_sizes()
        finally:
            system.stop()
    report(rounds, batches)
    return 0


_BATCH_LINE = re.compile(r'^db_(batches|batched_items|lone_items)_total\{batch="([^"]+)"\} (\S+)$')


def batch_sizes() -> list[str]:
    """What the services' batchers (shared/batching.py) did over the whole run, from
    their /metrics: the batched figures move with the size of the batches."""
    counts: dict[str, dict[str, float]] = {}
    for service in ("chat", "meeting"):
        url = f"{URL[service + '_metrics']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            for line in response.read().decode().splitlines():
                found = _BATCH_LINE.match(line)
                if found:
                    kind, batch, value = found.groups()
                    counts.setdefault(batch, {})[kind] = float(value)
    return [
        f"{batch}: {c['batched_items']:.0f} requests in {c['batches']:.0f} statements"
        f" (mean {c['batched_items'] / c['batches']:.1f}), {c['lone_items']:.0f} alone"
        if c.get("batches")
        else f"{batch}: {c.get('lone_items', 0):.0f} requests, all alone"
        for batch, c in sorted(counts.items())
    ]


def run_all(system: System, tmp: Path) -> list[dict[str, float]]:
    gw = URL["gateway"]
    session = call("POST", f"{gw}/auth/register", {"username": "bench", "password": PASSWORD})
    token = str(session["access_token"])
    user_id = str(session["user"]["id"])  # type: ignore[index]
    rooms = {}
    for name in ("bench", "big", "other", "small"):
        body = {"room_name": name, "is_private": 0}
        rooms[name] = int(call("POST", f"{gw}/api/create_room", body, token)["room_id"])  # type: ignore[call-overload]
    for i in range(200):
        body2 = {"room_id": rooms["bench"], "message": f"m{i}"}
        call("POST", f"{gw}/api/send_room_message", body2, token)
    code = call("POST", f"{gw}/rooms", {"name": "bench"}, token)["code"]
    print(f"seeding {HISTORY_ROWS:,} + {HISTORY_ROWS // 20:,} + 1,000 messages", flush=True)
    flask_room = asyncio.run(seed_database(system.dsn, rooms, "flask-token"))
    system.start_flask()

    send = wrk_script(
        tmp / "send.lua",
        "POST",
        json.dumps({"room_id": rooms["bench"], "message": "hello from wrk"}),
    )
    flask_send = wrk_script(
        tmp / "fsend.lua", "POST", json.dumps({"room_id": flask_room, "message": "hello from wrk"})
    )
    create = wrk_script(tmp / "create.lua", "POST", '{"name": "bench"}')
    login = wrk_script(
        tmp / "login.lua", "POST", json.dumps({"username": "bench", "password": PASSWORD})
    )
    create_sql = tmp / "create.sql"
    create_sql.write_text(create_room_sql())
    create_values = {"name": "bench", "user_id": user_id, "display_name": "bench"}
    send_sql = tmp / "send.sql"
    send_sql.write_text(send_message_sql())
    send_values = {
        "room_id": str(rooms["bench"]),
        "username": "bench",
        "body": "hello from wrk",
        "channel": CHANNEL,
    }

    def history(room: int) -> str:
        return f"/api/get_room_messages?room_id={room}&limit=50"

    pid = system.pids
    lookup = f"/rooms/code/{code}"

    def proxy(r: dict[str, float]) -> None:
        _, r["gateway_us"] = per_request(
            pid["gateway"], lambda: wrk(gw + lookup, duration=DURATION)
        )
        _, r["nginx_us"] = per_request(
            pid["nginx"], lambda: wrk(URL["nginx"] + lookup, duration=DURATION)
        )
        _, r["meeting_us"] = per_request(
            pid["meeting"], lambda: wrk(URL["meeting"] + lookup, duration=DURATION)
        )

    def chat(r: dict[str, float]) -> None:
        _, r["chat_us"] = per_request(
            pid["chat"],
            lambda: wrk(URL["chat"] + history(rooms["bench"]), duration=DURATION, token=token),
        )

    def writes(r: dict[str, float]) -> None:
        r["create_rps"] = wrk(f"{gw}/rooms", duration=DURATION, token=token, script=create).rps
        r["create_tps"] = pgbench(
            system.dsn,
            create_sql,
            duration_s=SECONDS,
            clients=PGBENCH_CLIENTS,
            schema="meeting",
            variables=create_values,
        )
        r["send_rps"] = wrk(
            f"{gw}/api/send_room_message", duration=DURATION, token=token, script=send
        ).rps
        r["send_tps"] = pgbench(
            system.dsn,
            send_sql,
            duration_s=SECONDS,
            clients=PGBENCH_CLIENTS,
            schema="chat",
            variables=send_values,
        )

    def origin(r: dict[str, float]) -> None:
        if "send_rps" not in r:
            r["send_rps"] = wrk(
                f"{gw}/api/send_room_message", duration=DURATION, token=token, script=send
            ).rps
        r["flask_send_rps"] = wrk(
            f"{URL['flask']}/api/send_room_message",
            duration=DURATION,
            token="flask-token",
            script=flask_send,
        ).rps
        r["history_rps"] = wrk(gw + history(rooms["bench"]), duration=DURATION, token=token).rps
        r["flask_history_rps"] = wrk(
            URL["flask"] + history(flask_room), duration=DURATION, token="flask-token"
        ).rps

    def flat(r: dict[str, float]) -> None:
        for name in ("big", "small"):
            r[f"{name}_p50"] = wrk(
                gw + history(rooms[name]), duration=DURATION, connections=1, token=token
            ).p50_s

    def logins(r: dict[str, float]) -> None:
        r["me_idle_p99"] = wrk(f"{gw}/auth/me", duration=DURATION, connections=2, token=token).p99_s
        flood = subprocess.Popen(
            ["wrk", "-t1", "-c8", f"-d{SECONDS + 2}s", "-s", str(login), f"{gw}/auth/login"],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # the 8 logins in flight (a bench, not a test)
        r["me_flood_p99"] = wrk(
            f"{gw}/auth/me", duration=DURATION, connections=2, token=token
        ).p99_s
        flood.wait()

    groups = {
        "proxy": proxy,
        "chat": chat,
        "writes": writes,
        "origin": origin,
        "history": flat,
        "logins": logins,
    }
    rounds = []
    for number in range(1, ROUNDS + 1):
        r: dict[str, float] = {}
        for name, measure in groups.items():
            if name in ONLY:
                measure(r)
                settle(list(pid.values()))
        print(
            f"round {number}/{ROUNDS}: " + ", ".join(f"{k}={v:.4g}" for k, v in r.items()),
            flush=True,
        )
        rounds.append(r)
    return rounds


def settle(pids: list[int]) -> None:
    """Until the processes are idle: work left over from one scenario (a login's bcrypt
    still running after wrk stopped) must not be counted in the next."""
    for _ in range(40):
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(0.25)
        if sum(cpu_seconds(pid) for pid in pids) - before < 0.02:
            return


def ratio(rounds: list[dict[str, float]], top: str, bottom: str) -> float:
    if top not in rounds[0] or bottom not in rounds[0]:
        return float("nan")
    return median([r[top] / r[bottom] for r in rounds])


def m(rounds: list[dict[str, float]], key: str, scale: float = 1.0) -> float:
    if key not in rounds[0]:
        return float("nan")
    return median([r[key] for r in rounds]) * scale


def table(rounds: list[dict[str, float]]) -> list[tuple[str, str, str, bool]]:
    us, ms = 1e6, 1e3
    gw_ratio = ratio(rounds, "gateway_us", "nginx_us")
    create = ratio(rounds, "create_rps", "create_tps")
    send = ratio(rounds, "send_rps", "send_tps")
    send_flask = ratio(rounds, "send_rps", "flask_send_rps")
    history_flask = ratio(rounds, "history_rps", "flask_history_rps")
    flat = ratio(rounds, "big_p50", "small_p50")
    isolation = ratio(rounds, "me_flood_p99", "me_idle_p99")
    meeting, chat = m(rounds, "meeting_us", us), m(rounds, "chat_us", us)
    return [
        (
            "gateway CPU per proxied `GET /rooms/code/{code}` ÷ nginx's",
            f"{m(rounds, 'gateway_us', us):.0f} µs ÷ {m(rounds, 'nginx_us', us):.0f} µs"
            f" = {gw_ratio:.1f}x",
            "≤ 3x",
            gw_ratio <= 3,
        ),
        (
            "meeting service CPU per `GET /rooms/code/{code}`",
            f"{meeting:.0f} µs",
            "≤ 150 µs",
            meeting <= 150,
        ),
        (
            "chat service CPU per `get_room_messages` (50 messages)",
            f"{chat:.0f} µs",
            "≤ 330 µs",
            chat <= 330,
        ),
        (
            "`POST /rooms` through the gateway ÷ pgbench, same transaction",
            f"{m(rounds, 'create_rps'):.0f} ÷ {m(rounds, 'create_tps'):.0f} = {create:.0%}",
            "≥ 40 %",
            create >= 0.4,
        ),
        (
            "`send_room_message` through the gateway ÷ pgbench, same transaction",
            f"{m(rounds, 'send_rps'):.0f} ÷ {m(rounds, 'send_tps'):.0f} = {send:.0%}",
            "≥ 60 %",
            send >= 0.6,
        ),
        (
            "message send / history read through the gateway ÷ the Flask reference",
            f"{send_flask:.1f}x / {history_flask:.1f}x"
            f" ({m(rounds, 'flask_send_rps'):.0f} / {m(rounds, 'flask_history_rps'):.0f} req/s)",
            "≥ 5x both",
            min(send_flask, history_flask) >= 5,
        ),
        (
            f"newest history page, room of {HISTORY_ROWS:,} after {HISTORY_ROWS // 20:,}"
            " to another room ÷ room of 1k (p50)",
            f"{m(rounds, 'big_p50', ms):.2f} ms ÷ {m(rounds, 'small_p50', ms):.2f} ms"
            f" = {flat:.2f}x",
            "≤ 1.2x",
            flat <= 1.2,
        ),
        (
            "`GET /auth/me` p99 during 8 concurrent logins ÷ idle p99",
            f"{m(rounds, 'me_flood_p99', ms):.1f} ms ÷ {m(rounds, 'me_idle_p99', ms):.1f} ms"
            f" = {isolation:.1f}x",
            "≤ 3x",
            isolation <= 3,
        ),
    ]


def report(rounds: list[dict[str, float]], batches: list[str]) -> None:
    lines = [
        f"`make bench`: median of {len(rounds)} interleaved rounds of {SECONDS} s,"
        f" wrk -t1 -c32, {os.cpu_count()} cores shared by everything",
        "",
        "| figure | measured | target | met |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {f} | {v} | {t} | {'yes' if ok else 'NO'} |"
        for f, v, t, ok in table(rounds)
        if "nan" not in v
    ]
    if batches:
        lines += ["", "Batches over the run (shared/batching.py, from /metrics):", ""]
        lines += [f"- {line}" for line in batches]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(text)
    (out / "rounds.json").write_text(json.dumps(rounds, indent=1))


if __name__ == "__main__":
    sys.exit(main())
