"""`make run`'s runner, as a user meets it: the embedded Postgres and three
processes from one command, a clean stop on Ctrl-C, and data kept between runs."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


async def _start(data_dir: Path, ports: list[int]) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DATA_DIR=str(data_dir),
        GATEWAY_PORT=str(ports[0]),
        CHAT_PORT=str(ports[1]),
        MEETING_PORT=str(ports[2]),
        BCRYPT_ROUNDS="4",
        LOG_LEVEL="WARNING",
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.dev", env=env, stdout=asyncio.subprocess.PIPE
    )


async def _until_ready(session: aiohttp.ClientSession, url: str) -> None:
    async with asyncio.timeout(90):
        while True:
            try:
                async with session.get(url) as r:
                    if r.status == 200 and all((await r.json()).get("upstreams", {}).values()):
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)  # polling for readiness, not timing a result


async def _stop(process: asyncio.subprocess.Process, sig: int) -> bytes:
    process.send_signal(sig)
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    return output


async def test_one_command_runs_everything_and_stops_cleanly(tmp_path):
    ports = _free_ports(3)
    gateway = f"http://127.0.0.1:{ports[0]}"
    credentials = {"username": "ada", "password": "correct horse"}
    async with aiohttp.ClientSession() as session:
        process = await _start(tmp_path, ports)
        try:
            await _until_ready(session, f"{gateway}/readyz?upstreams")
            async with session.post(f"{gateway}/auth/register", json=credentials) as r:
                assert r.status == 201
                token = (await r.json())["access_token"]
            headers = {"Authorization": token}
            async with session.post(
                f"{gateway}/api/create_room", json={"room_name": "General"}, headers=headers
            ) as r:
                assert r.status == 201
            async with session.post(f"{gateway}/rooms", json={}, headers=headers) as r:
                assert r.status == 201
        finally:
            output = await _stop(process, signal.SIGINT)
        assert process.returncode == 0
        printed = output.decode()
        assert f"gateway          http://127.0.0.1:{ports[0]}" in printed
        assert "postgres   stopped" in printed
        assert not (tmp_path / "pg" / "postmaster.pid").exists()
        assert (tmp_path / "jwt_signing_key.pem").exists()

        # A second run finds the first one's data, and signs with the same key.
        process = await _start(tmp_path, ports)
        try:
            await _until_ready(session, f"{gateway}/readyz?upstreams")
            async with session.post(f"{gateway}/auth/login", json=credentials) as r:
                assert r.status == 200
            async with session.get(f"{gateway}/api/rooms", headers=headers) as r:
                assert r.status == 200
                assert [room["name"] for room in (await r.json())["rooms"]] == ["General"]
        finally:
            await _stop(process, signal.SIGTERM)
        assert process.returncode == 0
