"""asyncpg's pool, with a release that returns a clean connection at once.

asyncpg releases a connection through a shielded task (`asyncio.shield`): a Task,
two more event-loop iterations, a timeout context and the reset coroutines, for
every checkout, so that a release's I/O (a ROLLBACK, a reset query) finishes even
if the caller is cancelled meanwhile. With `keep_session` as the reset there is
often no I/O at all: a connection that is open, idle (no transaction, no query
being cancelled), under its query limit and of the pool's generation, with no
listeners, has nothing to undo. `Pool.release` hands such a connection back
there and then, as asyncpg's release ends; anything else takes asyncpg's own
path, unchanged (tests/integration/test_pool_reset.py covers both). ~20 µs of
CPU a request on the read paths (docs in the commit that added it).

That fast path reads asyncpg's own attributes, so it runs only on the asyncpg
releases it was written against and tested with (`FAST_RELEASE_ASYNCPG`). On a
newer one every release takes asyncpg's path: slower, never wrong, and the
process logs it once at start.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.releases import tested_release

log = logging.getLogger(__name__)

# The asyncpg releases (major, minor) whose pool internals `_released_now` follows.
FAST_RELEASE_ASYNCPG = ((0, 30), (0, 31), (0, 32))


def fast_release_supported(version: str = asyncpg.__version__) -> bool:
    """Whether `version` is an asyncpg release the fast path was written for."""
    return tested_release(version, FAST_RELEASE_ASYNCPG)


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset, replacing asyncpg's reset query (advisory unlock, CLOSE ALL,
    UNLISTEN *, RESET ALL: one round trip on every release).

    Before calling it asyncpg already rolls back a transaction left open (a request
    cancelled inside one). Nothing else outlives a checkout here: settings are only
    SET LOCAL, advisory locks only transaction-scoped, no cursors or temporary tables
    are declared outside a transaction, and the one LISTEN connection (shared.realtime)
    is terminated, never handed back. A new kind of session state needs its undoing
    here, and then `Pool.release` may no longer skip it.
    """


class Pool(asyncpg.Pool):
    __slots__ = ()
    fast_release = fast_release_supported()

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (asyncpg's signature)
        if not (self.fast_release and _released_now(self, connection)):
            await super().release(connection, timeout=timeout)


def _released_now(pool: Pool, proxy: Any) -> bool:
    """What asyncpg's release does when it has no I/O to do, done here; False (and
    nothing done) when it might have some."""
    # asyncpg's own attributes, as its release reads them (its stubs leave them out).
    state: Any = pool
    if type(proxy) is not PoolConnectionProxy or state._reset is not keep_session:
        return False
    holder: Any = proxy._holder
    con: Any = getattr(proxy, "_con", None)
    if con is None or holder._pool is not pool or holder._in_use is None:
        return False
    protocol = con._protocol
    if (
        con.is_closed()
        or protocol._is_cancelling()
        or protocol.is_in_transaction()
        or con._top_xact is not None
        or protocol.queries_count >= holder._max_queries
        or holder._generation != state._generation
        or con._listeners
        or con._log_listeners
    ):
        return False
    con._on_release()  # asyncpg's bookkeeping: references to the proxy stop working
    holder._timeout = None
    holder._release()  # back in the pool's queue, a waiter woken
    holder._setup_inactive_callback()
    return True


async def new_pool(dsn: str, *, reset: Any = keep_session, **options: Any) -> Pool:
    """asyncpg.create_pool's pool, of this class (asyncpg.create_pool makes its own)."""
    pool = Pool(
        dsn,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        min_size=options.pop("min_size", 10),
        max_size=options.pop("max_size", 10),
        max_queries=options.pop("max_queries", 50000),
        max_inactive_connection_lifetime=options.pop("max_inactive_connection_lifetime", 300.0),
        loop=None,
        reset=reset,
        **options,
    )
    if not pool.fast_release:
        log.warning(
            "asyncpg %s is newer than shared.pool's fast release: asyncpg's own release is used",
            asyncpg.__version__,
        )
    await pool
    return pool
