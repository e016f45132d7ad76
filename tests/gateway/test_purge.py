"""Expired login attempts and refresh tokens are deleted, and nothing else is."""

from __future__ import annotations

import asyncio

import asyncpg

from gateway.purge import ROUNDS_KEY, attempts_kept_s, purge
from tests.conftest import gateway_settings_for

PASSWORD = "correct horse battery"


async def _age(db, key: str, seconds: int) -> None:
    await db.execute(
        "INSERT INTO gateway.login_attempts (key, at)"
        " VALUES ($1, clock_timestamp() - make_interval(secs => $2))",
        key,
        float(seconds),
    )


async def test_purge_deletes_what_expired_and_keeps_the_rest(
    gateway, db, database_url, signing_key
):
    settings = gateway_settings_for(
        database_url, signing_key, login_window_s=900, register_window_s=3600, guest_window_s=60
    )
    assert attempts_kept_s(settings) == 3600
    # The gateway purges once as it starts: let that round finish, or it may take
    # the rows this test purges itself.
    await gateway.server.app[ROUNDS_KEY].wait_for(1)
    await _age(db, "addr:old", 3700)
    await _age(db, "register:addr:old", 3601)
    await _age(db, "account:recent", 1000)  # past the login window, inside the longest
    await _age(db, "addr:now", 0)
    r = await gateway.post("/auth/register", json={"username": "alice", "password": PASSWORD})
    live = (await r.json())["refresh_token"]
    r = await gateway.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    spent = (await r.json())["refresh_token"]
    assert (await gateway.post("/auth/refresh", json={"refresh_token": spent})).status == 200
    await db.execute(
        "UPDATE gateway.refresh_tokens SET expires_at = now() - interval '1 second'"
        " WHERE used_at IS NOT NULL"
    )
    tokens_before = await db.fetchval("SELECT count(*) FROM gateway.refresh_tokens")
    assert tokens_before == 3

    pool = await asyncpg.create_pool(database_url, server_settings={"search_path": "gateway"})
    try:
        purged = await purge(pool, settings)
        assert (purged.attempts, purged.refresh_tokens) == (2, 1)
        again = await purge(pool, settings)
        assert (again.attempts, again.refresh_tokens) == (0, 0)
    finally:
        await pool.close()
    keys = await db.fetch("SELECT key FROM gateway.login_attempts ORDER BY key")
    assert [row["key"] for row in keys] == ["account:recent", "addr:now", "register:addr:127.0.0.1"]
    assert await db.fetchval("SELECT count(*) FROM gateway.refresh_tokens") == 2
    # The live sessions still work.
    assert (await gateway.post("/auth/refresh", json={"refresh_token": live})).status == 200


async def test_purge_works_in_batches(db, gateway, database_url, signing_key):
    from gateway import login_limits

    await gateway.server.app[ROUNDS_KEY].wait_for(1)
    await db.execute(
        "INSERT INTO gateway.login_attempts (key, at)"
        " SELECT 'k' || g, now() - interval '2 hours' FROM generate_series(1, 25) g"
    )
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "gateway"})
    try:
        assert await login_limits.purge(conn, 3600, batch=10) == 25
    finally:
        await conn.close()
    assert await db.fetchval("SELECT count(*) FROM gateway.login_attempts") == 0


async def test_the_gateway_purges_periodically(gateway_factory, echo, db):
    gateway = await gateway_factory(str(echo.server.make_url("")), purge_interval_s=0.05)
    rounds = gateway.server.app[ROUNDS_KEY]
    await _age(db, "addr:stale", 10_000)
    # Two more finished rounds: the second began after the insert.
    await asyncio.wait_for(rounds.wait_for(rounds.finished + 2), timeout=30)
    assert await db.fetchval("SELECT count(*) FROM gateway.login_attempts") == 0
    assert (await gateway.get("/healthz")).status == 200
