"""More than one meeting replica on one database: in this process (aiohttp test
servers) or as a real process that a test can kill without any goodbye."""

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def until_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(60):
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)  # polling for readiness, not timing a result


@contextlib.asynccontextmanager
async def meeting_process(database_url: str, jwks_json: str, **settings: Any) -> AsyncIterator[Any]:
    """`python -m meeting_service` on a free port; yields (base URL, process)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DATABASE_URL=database_url,
        JWKS=jwks_json,
        HOST="127.0.0.1",
        PORT=str(port),
        LOG_LEVEL="WARNING",
        **{name.upper(): str(value) for name, value in settings.items()},
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "meeting_service", env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        await until_ready(f"{base}/readyz")
        yield base, process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()
