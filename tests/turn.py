"""A real TURN server for the tests: coturn on loopback, checking credentials with
use-auth-secret (the TURN REST API convention), configured only by its command line."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aioice import stun
from aioice.turn import create_turn_endpoint

from tests.meeting_service.replicas import free_port

REALM = "rooms.test"


@dataclass(frozen=True)
class Turn:
    port: int
    secret: str

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"


async def allocate(port: int, username: str, credential: str) -> tuple[str, int]:
    """A TURN Allocate with these credentials: the relayed address, or
    stun.TransactionFailed (401 for credentials coturn refuses)."""
    transport, _ = await create_turn_endpoint(
        asyncio.DatagramProtocol, ("127.0.0.1", port), username=username, password=credential
    )
    try:
        relayed: tuple[str, int] = transport.get_extra_info("sockname")
        return relayed
    finally:
        transport.close()


async def _until_answering(port: int) -> None:
    """Until coturn answers: a refused Allocate (401) proves it listens."""
    async with asyncio.timeout(30):
        while True:
            try:
                await allocate(port, "0:probe", "wrong")
            except stun.TransactionFailed:
                return
            except (OSError, stun.TransactionTimeout):
                await asyncio.sleep(0.1)  # polling for readiness, not timing a result


@contextlib.asynccontextmanager
async def coturn() -> AsyncIterator[Turn]:
    binary = shutil.which("turnserver")
    assert binary, "coturn is missing: `make test` installs it (apt-get install coturn)"
    port, secret = free_port(), secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="coturn-") as tmp:
        process = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            "/dev/null",  # no configuration file from /etc: all of it is here
            "-n",
            "--no-cli",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            f"--realm={REALM}",
            "--no-tls",
            "--no-dtls",
            "--allow-loopback-peers",
            "--log-file=stdout",
            "--simple-log",
            f"--pidfile={Path(tmp) / 'turn.pid'}",
            f"--db={Path(tmp) / 'turndb'}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await _until_answering(port)
            yield Turn(port, secret)
        finally:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
