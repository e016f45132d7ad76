"""A process's log from its first line to its last, as an operator reads it: JSON
lines only, a startup line with the version and address, a shutdown line, and a
startup failure as a JSON line with exit status 1, never a bare traceback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from importlib.metadata import version
from typing import Any

import aiohttp

VERSION = version("rooms-platform")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _spawn(module: str, **env: str) -> asyncio.subprocess.Process:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update(HOST="127.0.0.1", LOG_LEVEL="INFO", **env)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _line_until(process: asyncio.subprocess.Process, msg: str) -> dict[str, Any]:
    assert process.stdout is not None
    async with asyncio.timeout(60):
        while True:
            raw = await process.stdout.readline()
            assert raw, f"the process ended before logging {msg!r}"
            line = json.loads(raw)
            if line["msg"] == msg:
                return line


async def test_startup_and_shutdown_lines(database_url, jwks_json):
    port = _free_port()
    process = await _spawn(
        "chat_service", DATABASE_URL=database_url, JWKS=jwks_json, PORT=str(port)
    )
    try:
        started = await _line_until(process, "started")
        assert started["service"] == "chat"
        assert started["level"] == "info"
        assert started["version"] == VERSION
        assert started["address"] == f"http://127.0.0.1:{port}"
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/version") as r,
        ):
            assert r.status == 200
            assert (await r.json())["version"] == VERSION
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest, errors = await process.communicate()
    assert process.returncode == 0
    lines = [json.loads(line) for line in rest.splitlines()]
    messages = [line["msg"] for line in lines]
    assert "shutting down" in messages
    assert messages[-1] == "stopped"
    assert lines[-1]["version"] == VERSION
    # The request line of /version: method, path, status, a sub-millisecond duration.
    request = next(line for line in lines if line.get("path") == "/version")
    assert request["status"] == 200
    assert isinstance(request["duration_ms"], float)
    assert errors == b""


async def _failed_start(module: str, **env: str) -> list[dict[str, Any]]:
    """The JSON lines of a process that must not start: exit 1, nothing on stderr,
    the last line `startup failed`."""
    process = await _spawn(module, **env)
    async with asyncio.timeout(60):
        output, errors = await process.communicate()
    assert process.returncode == 1
    assert errors == b""  # no bare traceback
    lines = [json.loads(line) for line in output.splitlines()]
    assert lines[-1]["msg"] == "startup failed"
    assert lines[-1]["level"] == "critical"
    assert all(line["msg"] != "started" for line in lines)
    return lines


async def test_a_database_out_of_reach_is_a_json_startup_failure():
    closed = _free_port()
    lines = await _failed_start(
        "meeting_service",
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed}/rooms",
        DB_CONNECT_TIMEOUT_S="0.3",
        PORT=str(_free_port()),
    )
    failure = lines[-1]
    assert failure["service"] == "meeting"
    assert failure["stage"] == "start"
    assert "Connect call failed" in failure["error"] or "refused" in failure["error"].lower()


async def test_a_bad_setting_is_a_json_startup_failure_naming_it():
    [failure] = await _failed_start("gateway", PORT="eighty", ENVIRONMENT="production")
    assert failure["stage"] == "configuration"
    assert [detail["loc"] for detail in failure["details"]] == [["port"]]
    assert "exc" not in failure  # a configuration error needs no traceback


async def test_a_missing_signing_key_in_production_is_a_json_startup_failure():
    [failure] = await _failed_start("gateway", ENVIRONMENT="production", PORT=str(_free_port()))
    assert failure["stage"] == "configuration"
    assert "JWT_PRIVATE_KEY" in failure["error"]
