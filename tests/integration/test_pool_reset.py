"""The pool's reset (shared.pool.keep_session): no reset query on release, and still
nothing of one request's transaction reaches the next; shared.pool.Pool's release."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from shared.db import create_pool
from shared.pool import Pool, fast_release_supported, new_pool
from shared.settings import CommonSettings


def slow_releases(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The connections released by asyncpg's own (shielded) release, in order."""
    slow: list[object] = []
    release = asyncpg.Pool.release

    async def counted(self: asyncpg.Pool, connection: object, **kwargs: object) -> None:
        slow.append(connection)
        await release(self, connection, **kwargs)

    monkeypatch.setattr(asyncpg.Pool, "release", counted)
    return slow


def settings(database_url: str) -> CommonSettings:
    return CommonSettings(database_url=database_url, db_pool_min_size=1, db_pool_max_size=1)


async def test_a_release_sends_nothing(database_url, db):
    pool = await create_pool(settings(database_url), "public")
    try:
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            await conn.execute("SELECT 'the last query' AS marker")
        # Released: the server's last statement on that connection is still ours.
        last = await db.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        assert last == "SELECT 'the last query' AS marker"
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid
    finally:
        await pool.close()


async def test_a_transaction_left_open_is_rolled_back_on_release(database_url, db):
    await db.execute("CREATE TABLE notes (body text)")
    pool = await create_pool(settings(database_url), "public")
    try:
        async with pool.acquire() as conn:
            # As a request cancelled between two statements of a transaction leaves it.
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO notes VALUES ('never committed')")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM notes") == 0
    finally:
        await pool.close()


async def test_a_clean_release_skips_asyncpgs_shielded_release(database_url, monkeypatch):
    """shared.pool.Pool hands an idle connection back itself; a connection with
    something to undo (a transaction left open) takes asyncpg's own release."""
    slow = slow_releases(monkeypatch)
    pool = await create_pool(settings(database_url), "public")
    try:
        assert isinstance(pool, Pool)
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            await conn.fetchval("SELECT 1")
        assert slow == []
        assert pool.get_idle_size() == 1
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid
            await conn.execute("BEGIN")
        assert len(slow) == 1
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid
            assert not conn.is_in_transaction()
    finally:
        await pool.close()


async def test_a_waiter_gets_the_connection_released_the_fast_way(database_url):
    pool = await create_pool(settings(database_url), "public")
    try:
        conn = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)  # the waiter queues for the pool's one connection
        assert not waiter.done()
        await pool.release(conn)
        again = await asyncio.wait_for(waiter, 10)
        assert await again.fetchval("SELECT 2") == 2
        await pool.release(again)
        # Released means detached: the old proxy no longer reaches the connection.
        with pytest.raises(asyncpg.InterfaceError):
            await conn.fetchval("SELECT 3")
    finally:
        await pool.close()


async def test_a_connection_at_its_query_limit_is_replaced(database_url):
    pool = await new_pool(database_url, min_size=1, max_size=1, max_queries=2)
    try:
        async with pool.acquire() as conn:
            first = conn.get_server_pid()
            await conn.fetchval("SELECT 1")
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == first
            await conn.fetchval("SELECT 2")
        async with pool.acquire() as conn:
            assert conn.get_server_pid() != first
    finally:
        await pool.close()


async def test_a_pool_closes_once_its_connections_are_back(database_url):
    pool = await create_pool(settings(database_url), "public")
    conn = await pool.acquire()
    closing = asyncio.ensure_future(pool.close())
    await asyncio.sleep(0)
    assert not closing.done()  # it waits for the connection lent out
    await pool.release(conn)
    await asyncio.wait_for(closing, 10)


def test_the_fast_release_is_for_the_asyncpg_releases_it_follows():
    assert fast_release_supported()  # the asyncpg this project installs
    assert fast_release_supported("0.30.0") and fast_release_supported("0.32.1")
    assert not fast_release_supported("0.33.0")
    assert not fast_release_supported("1.0.0")


async def test_an_unknown_asyncpg_takes_asyncpgs_own_release(database_url, monkeypatch, caplog):
    """On an asyncpg whose internals the fast path does not know, every release is
    asyncpg's own (slower, never wrong), and the start says so once."""
    slow = slow_releases(monkeypatch)
    monkeypatch.setattr(Pool, "fast_release", False)
    with caplog.at_level(logging.WARNING, logger="shared.pool"):
        pool = await create_pool(settings(database_url), "public")
    try:
        assert [r.getMessage() for r in caplog.records if r.name == "shared.pool"] == [
            f"asyncpg {asyncpg.__version__} is newer than shared.pool's fast release:"
            " asyncpg's own release is used"
        ]
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            await conn.fetchval("SELECT 1")
        assert len(slow) == 1
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid
    finally:
        await pool.close()
