"""Login attempts limited per username and per client address, in Postgres so
that the limit holds across gateway replicas.

Attempts on one key are serialised by a transaction-scoped advisory lock, so
of N simultaneous attempts exactly the first `limit` are let through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.db import Conn


@dataclass(frozen=True)
class Limit:
    key: str
    max_attempts: int


async def admit(conn: Conn, limits: list[Limit], window_s: int) -> tuple[list[int], int | None]:
    """Record one attempt under every key: (its row ids, None) when all keys are
    within their limits, or ([], seconds to wait) when one is not. A refused
    attempt is not recorded, so a lockout ends a window after the last real try."""
    retry_after: int | None = None
    async with conn.transaction():
        # Sorted, so that two attempts never wait on each other's locks in a cycle.
        for limit in sorted(limits, key=lambda limit: limit.key):
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", limit.key)
        for limit in limits:
            window = await conn.fetchrow(
                "WITH expired AS ("
                "  DELETE FROM login_attempts"
                "  WHERE key = $1 AND at < clock_timestamp() - make_interval(secs => $2)"
                ") SELECT count(*) AS attempts,"
                " EXTRACT(EPOCH FROM min(at) + make_interval(secs => $2) - clock_timestamp())"
                " AS wait"
                " FROM login_attempts"
                " WHERE key = $1 AND at >= clock_timestamp() - make_interval(secs => $2)",
                limit.key,
                float(window_s),
            )
            assert window is not None
            if window["attempts"] >= limit.max_attempts:
                wait = max(1, math.ceil(float(window["wait"])))
                retry_after = max(retry_after or 0, wait)
        if retry_after is not None:
            return [], retry_after
        ids = [
            await conn.fetchval(
                "INSERT INTO login_attempts (key) VALUES ($1) RETURNING id", limit.key
            )
            for limit in limits
        ]
    return ids, None


async def forget(conn: Conn, attempt_ids: list[int]) -> None:
    await conn.execute("DELETE FROM login_attempts WHERE id = ANY($1::bigint[])", attempt_ids)


async def clear(conn: Conn, key: str) -> None:
    """A successful login clears that username's failures."""
    await conn.execute("DELETE FROM login_attempts WHERE key = $1", key)


async def purge(conn: Conn, older_than_s: int, *, batch: int = 10_000) -> int:
    """Delete attempts older than every window (keys never tried again keep theirs
    until now), in batches so that no statement holds many row locks for long."""
    deleted = 0
    while True:
        count: int = await conn.fetchval(
            "WITH gone AS ("
            "  DELETE FROM login_attempts WHERE id IN ("
            "    SELECT id FROM login_attempts"
            "    WHERE at < clock_timestamp() - make_interval(secs => $1) LIMIT $2)"
            "  RETURNING id"
            ") SELECT count(*) FROM gone",
            float(older_than_s),
            batch,
        )
        deleted += count
        if count < batch:
            return deleted
