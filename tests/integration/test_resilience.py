"""Migrations under concurrency, and recovery from a database restart."""

import asyncio
import os

import asyncpg
import pytest

from chat_service.app import MIGRATIONS as CHAT_MIGRATIONS
from shared.db import migrate, migration_files


async def test_two_processes_migrating_at_once_apply_one_set(database_url):
    first, second = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        results = await asyncio.gather(
            migrate(first, "chat", CHAT_MIGRATIONS), migrate(second, "chat", CHAT_MIGRATIONS)
        )
        versions = [version for version, _ in migration_files(CHAT_MIGRATIONS)]
        assert sorted(results, key=len) == [[], versions]
        rows = await first.fetch("SELECT version FROM chat.schema_migrations ORDER BY version")
        assert [row["version"] for row in rows] == versions
        # Applying again changes nothing.
        assert await migrate(first, "chat", CHAT_MIGRATIONS) == []
    finally:
        await first.close()
        await second.close()


async def test_replicas_starting_together_share_one_schema(aiohttp_client, database_url, jwks_json):
    from meeting_service.app import create_app
    from meeting_service.settings import MeetingSettings

    settings = MeetingSettings(database_url=database_url, jwks=jwks_json)
    clients = await asyncio.gather(*(aiohttp_client(create_app(settings)) for _ in range(3)))
    for client in clients:
        assert (await client.get("/readyz")).status == 200


@pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="restarts the embedded server, which an external one is not",
)
async def test_a_database_restart_is_a_503_then_recovers_by_itself(
    gateway_stack, embedded_postgres, make_token
):
    client = gateway_stack.client
    headers = {"Authorization": make_token("alice")}
    assert (await client.get("/api/rooms", headers=headers)).status == 200
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, embedded_postgres.stop_server)
    try:
        r = await client.get("/api/rooms", headers=headers)
        assert r.status == 503
        body = await r.json()
        assert body["error"] == "service unavailable"
        r = await client.post("/auth/login", json={"username": "alice", "password": "12345678"})
        assert r.status == 503
        r = await client.get("/readyz")
        assert r.status == 503
    finally:
        await loop.run_in_executor(None, embedded_postgres.start_server)
    # No restart of any process: the pools reconnect on their own.
    assert (await client.get("/api/rooms", headers=headers)).status == 200
    assert (await client.get("/rooms", headers=headers)).status == 200
    r = await client.post("/auth/register", json={"username": "alice", "password": "12345678"})
    assert r.status == 201
    assert (await client.get("/readyz")).status == 200
