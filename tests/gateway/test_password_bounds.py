"""Password hashing is bounded (shared.passwords): a login or a private room's password
that cannot even wait its turn is refused at once with 503 and Retry-After, while
requests that need no bcrypt go on. The bounds are settings; here one hash at a time
and one waiting, filled by jobs the test holds until it lets them go."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from chat_service.app import create_app as create_chat
from chat_service.settings import ChatSettings
from shared.passwords import BUSY, PASSWORDS_KEY, PasswordHasher
from tests.chat_service.helpers import create_room, join

BOUNDS = {"password_hash_workers": 1, "password_hash_queue": 1}
PASSWORD = "correct horse battery"


@asynccontextmanager
async def full(hasher: PasswordHasher) -> Any:
    """Every place taken (one hashing, the rest queued) until the block ends."""
    gate = threading.Event()
    held = [hasher.submit(gate.wait) for _ in range(hasher.capacity)]
    try:
        assert hasher.admitted == hasher.capacity
        yield
    finally:
        gate.set()
        await asyncio.gather(*held)


async def assert_busy(response: Any) -> None:
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert response.content_type == "application/json"
    assert await response.json() == {"error": BUSY, "code": "passwords_busy"}


async def test_a_login_that_cannot_be_queued_is_503_and_the_rest_goes_on(
    gateway_factory: Callable[..., Any], echo: Any, db: Any
) -> None:
    gateway = await gateway_factory(str(echo.server.make_url("")), **BOUNDS)
    credentials = {"username": "alice", "password": PASSWORD}
    registered = await gateway.post("/auth/register", json=credentials)
    assert registered.status == 201
    token = (await registered.json())["access_token"]
    hasher = gateway.app[PASSWORDS_KEY]
    counted = "SELECT count(*) FROM gateway.login_attempts"
    attempts = await db.fetchval(counted)  # alice's registration counts toward its limit
    async with full(hasher):
        await assert_busy(await gateway.post("/auth/login", json=credentials))
        await assert_busy(
            await gateway.post("/auth/register", json={"username": "bob", "password": PASSWORD})
        )
        # Nothing checked, nothing counted against the login limit.
        assert await db.fetchval(counted) == attempts
        # What needs no bcrypt is not held up.
        me = await gateway.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status == 200
    assert hasher.admitted == 0
    assert (await gateway.post("/auth/login", json=credentials)).status == 200
    # bob was never registered: the refusal changed nothing.
    refused = await gateway.post("/auth/login", json={"username": "bob", "password": PASSWORD})
    assert refused.status == 401


async def test_hashes_run_one_at_a_time_when_the_bound_is_one() -> None:
    hasher = PasswordHasher(rounds=4, workers=1, queue=3, retry_after_s=1)
    lock = threading.Lock()
    running, most = 0, 0
    gate = threading.Event()

    def job() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait()
        with lock:
            running -= 1

    try:
        jobs = [hasher.submit(job) for _ in range(4)]
        gate.set()
        await asyncio.gather(*jobs)
        assert most == 1
        assert hasher.admitted == 0
    finally:
        gate.set()
        hasher.close()


async def test_hashing_threads_run_at_a_lower_priority_than_the_loop() -> None:
    """Under contention the scheduler serves requests before hashes: the hashing
    threads' nice value is the process's plus the setting, the loop's is untouched."""

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_nice = nice()
    hasher = PasswordHasher(rounds=4, workers=2, queue=0, retry_after_s=1, nice=7)
    try:
        in_threads = await asyncio.gather(hasher.submit(nice), hasher.submit(nice))
        assert in_threads == [min(19, loop_nice + 7)] * 2
        assert nice() == loop_nice
        # It still hashes.
        assert await hasher.verify(PASSWORD, await hasher.hash(PASSWORD))
    finally:
        hasher.close()


async def test_a_private_rooms_password_that_cannot_be_queued_is_503(
    aiohttp_client: Any, database_url: str, jwks_json: str, make_token: Any, db: Any
) -> None:
    settings = ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4, **BOUNDS)
    chat = await aiohttp_client(create_chat(settings))
    alice = {"Authorization": f"Bearer {make_token('alice')}"}
    bob = {"Authorization": f"Bearer {make_token('bob')}"}
    await create_room(chat, alice, "Secret", password="pw")
    async with full(chat.app[PASSWORDS_KEY]):
        joining = {"name": "Secret", "password": "pw"}
        await assert_busy(await chat.post("/api/join_room", json=joining, headers=bob))
        response = await chat.post(
            "/api/create_room",
            json={"room_name": "Hidden", "is_private": 1, "password": "pw"},
            headers=alice,
        )
        await assert_busy(response)
        # A public room needs no hash.
        assert await create_room(chat, alice, "Open") > 0
    assert await db.fetchval("SELECT count(*) FROM chat.rooms WHERE name = 'Hidden'") == 0
    assert await db.fetchval("SELECT count(*) FROM chat.room_members WHERE username = 'bob'") == 0
    assert (await join(chat, bob, "Secret", "pw"))[0] == 200
    assert await db.fetchval("SELECT count(*) FROM chat.room_members WHERE username = 'bob'") == 1
