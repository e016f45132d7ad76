"""SIGTERM, as a deploy sends it, to real processes: each stops accepting, closes
every WebSocket with 1001 "going away" (the gateway its clients' too), lets
in-flight requests finish, and exits within its grace period."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import bearer
from tests.gateway.conftest import Echo

GRACE_S = 8.0
TIMEOUT_S = 30  # an upper bound on start-up, not a pause


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def start(module: str, **env: str) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SHUTDOWN_GRACE_S": str(GRACE_S),
        "LOG_LEVEL": "WARNING",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, env=environment, stderr=asyncio.subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session, asyncio.timeout(TIMEOUT_S):
        while True:
            try:
                async with session.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return process, url
            except aiohttp.ClientConnectionError:
                pass
            assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
            await asyncio.sleep(0.1)  # polling for start-up, not timing a result


@contextlib.asynccontextmanager
async def running(module: str, **env: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """The process, killed at the end if the test left it running."""
    process, url = await start(module, **env)
    try:
        yield process, url
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def exits_within_grace(process: asyncio.subprocess.Process) -> int:
    """The exit status; failing if the process is still there after its grace period."""
    try:
        async with asyncio.timeout(GRACE_S):
            return await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"still running {GRACE_S} s after SIGTERM") from None


async def test_the_chat_service_closes_its_sockets_with_1001_and_exits(
    database_url, jwks_json, make_token, session
):
    async with running("chat_service", DATABASE_URL=database_url, JWKS=jwks_json) as (
        process,
        url,
    ):
        headers = bearer(make_token("alice"))
        async with session.post(
            f"{url}/api/create_room", json={"room_name": "General"}, headers=headers
        ) as r:
            room_id = (await r.json())["room_id"]
        async with session.ws_connect(f"{url}/api/rooms/{room_id}/ws", headers=headers) as ws:
            process.send_signal(signal.SIGTERM)
            closing = await ws.receive(timeout=GRACE_S)
            assert closing.type == aiohttp.WSMsgType.CLOSE
            assert (closing.data, closing.extra) == (1001, "going away")
        assert await exits_within_grace(process) == 0


async def test_the_meeting_service_closes_its_sockets_with_1001_and_exits(
    database_url, jwks_json, make_token, session
):
    async with running("meeting_service", DATABASE_URL=database_url, JWKS=jwks_json) as (
        process,
        url,
    ):
        headers = bearer(make_token("alice"))
        async with session.post(f"{url}/rooms", json={}, headers=headers) as r:
            assert r.status == 201, await r.text()
            room_id = (await r.json())["id"]
        async with session.ws_connect(f"{url}/rooms/{room_id}/ws", headers=headers) as ws:
            process.send_signal(signal.SIGTERM)
            while (closing := await ws.receive(timeout=GRACE_S)).type == aiohttp.WSMsgType.TEXT:
                pass  # the room's state and presence frames come first
            assert closing.type == aiohttp.WSMsgType.CLOSE
            assert (closing.data, closing.extra) == (1001, "going away")
        assert await exits_within_grace(process) == 0


@pytest.fixture
async def gateway_process(
    database_url: str, signing_key: Any, aiohttp_server: Any
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, Echo]]:
    """A gateway process in front of an echo service that can stall a request."""
    echo = Echo()
    upstream: Any = await aiohttp_server(echo.app())
    upstream_url = str(upstream.make_url("")).rstrip("/")
    async with running(
        "gateway",
        DATABASE_URL=database_url,
        JWT_PRIVATE_KEY=signing_key.to_pem().decode(),
        CHAT_URL=upstream_url,
        MEETING_URL=upstream_url,
        BCRYPT_ROUNDS="4",
    ) as (process, url):
        yield process, url, echo
        echo.release.set()


async def test_the_gateway_closes_client_sockets_with_1001_and_finishes_requests(
    gateway_process, make_token, session
):
    process, url, echo = gateway_process
    token = make_token("alice")
    async with session.ws_connect(f"{url}/api/ws?access_token={token}") as ws:
        in_flight = asyncio.ensure_future(session.get(f"{url}/api/stall", headers=bearer(token)))
        await asyncio.wait_for(echo.stalling.wait(), TIMEOUT_S)
        process.send_signal(signal.SIGTERM)
        closing = await ws.receive(timeout=GRACE_S)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (1001, "going away")
        # The service's end of the relayed socket hears the same.
        assert await asyncio.wait_for(echo.closes.get(), GRACE_S) == 1001
        # The request that was under way when the signal came is answered.
        echo.release.set()
        response = await asyncio.wait_for(in_flight, GRACE_S)
        assert response.status == 200
    assert await exits_within_grace(process) == 0


async def test_a_request_that_outlasts_the_grace_period_does_not_hold_the_process(
    gateway_process, make_token, session
):
    process, url, echo = gateway_process
    stuck = asyncio.ensure_future(
        session.get(f"{url}/api/stall", headers=bearer(make_token("alice")))
    )
    await asyncio.wait_for(echo.stalling.wait(), TIMEOUT_S)
    process.send_signal(signal.SIGTERM)
    assert await exits_within_grace(process) == 0
    # Its client is told by the connection closing, not left waiting.
    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(stuck, TIMEOUT_S)
