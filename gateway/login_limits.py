"""Login attempts limited per username and per client address, in Postgres so
that the limit holds across gateway replicas.

An attempt is recorded before it is judged, and counted with every attempt
committed before it: of N simultaneous attempts only the first `limit` in
commit order can find themselves within the limit.
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
    within their limits, or ([], seconds to wait) when one is not."""
    ids = []
    retry_after: int | None = None
    for limit in limits:
        row = await conn.fetchrow(
            "WITH expired AS ("
            "  DELETE FROM login_attempts"
            "  WHERE key = $1 AND at < clock_timestamp() - make_interval(secs => $2)"
            "), attempt AS ("
            "  INSERT INTO login_attempts (key) VALUES ($1) RETURNING id"
            ") SELECT (SELECT id FROM attempt) AS id",
            limit.key,
            float(window_s),
        )
        assert row is not None
        ids.append(row["id"])
        window = await conn.fetchrow(
            "SELECT count(*) AS attempts,"
            " EXTRACT(EPOCH FROM min(at) + make_interval(secs => $2) - clock_timestamp()) AS wait"
            " FROM login_attempts"
            " WHERE key = $1 AND at >= clock_timestamp() - make_interval(secs => $2)",
            limit.key,
            float(window_s),
        )
        assert window is not None
        if window["attempts"] > limit.max_attempts:
            retry_after = max(retry_after or 0, max(1, math.ceil(float(window["wait"]))))
    if retry_after is not None:
        # A refused attempt is not counted: the lockout ends a window after the last real try.
        await forget(conn, ids)
        return [], retry_after
    return ids, None


async def forget(conn: Conn, attempt_ids: list[int]) -> None:
    await conn.execute("DELETE FROM login_attempts WHERE id = ANY($1::bigint[])", attempt_ids)


async def clear(conn: Conn, key: str) -> None:
    """A successful login clears that username's failures."""
    await conn.execute("DELETE FROM login_attempts WHERE key = $1", key)
