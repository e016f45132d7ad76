"""The pool's reset (shared.db.keep_session): no reset query on release, and still
nothing of one request's transaction reaches the next."""

from __future__ import annotations

from shared.db import create_pool
from shared.settings import CommonSettings


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
