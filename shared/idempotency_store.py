"""The SQL of Idempotency-Key, the same in each service's schema (its migration
`003_idempotency_keys.sql` makes the table)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.db import Conn


@dataclass(frozen=True)
class Stored:
    request_hash: bytes
    status: int
    body: str


async def claim(conn: Conn, user_id: str, key: str, request_hash: bytes, ttl_s: int) -> bool:
    """Inside the request's transaction, before its effect: True when this request is
    the first with `key` (or the key's previous use expired). A concurrent request
    holding the key makes this wait until it commits (False: read its answer) or
    rolls back (True)."""
    claimed = await conn.fetchval(
        "INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id, key) DO UPDATE"
        " SET request_hash = EXCLUDED.request_hash, status = 0, response_body = '',"
        " created_at = now()"
        " WHERE idempotency_keys.created_at < now() - make_interval(secs => $4)"
        " RETURNING true",
        user_id,
        key,
        request_hash,
        float(ttl_s),
    )
    return bool(claimed)


async def stored(conn: Conn, user_id: str, key: str) -> Stored | None:
    row = await conn.fetchrow(
        "SELECT request_hash, status, response_body FROM idempotency_keys"
        " WHERE user_id = $1 AND key = $2",
        user_id,
        key,
    )
    if row is None:
        return None
    return Stored(bytes(row["request_hash"]), row["status"], row["response_body"])


async def answer(conn: Conn, user_id: str, key: str, status: int, body: str) -> None:
    """The claimed key's answer, in the same transaction as the effect."""
    await conn.execute(
        "UPDATE idempotency_keys SET status = $3, response_body = $4"
        " WHERE user_id = $1 AND key = $2",
        user_id,
        key,
        status,
        body,
    )


async def purge(conn: Conn, ttl_s: int, *, batch: int = 10_000) -> int:
    """Delete keys older than `ttl_s`, in batches; how many went."""
    deleted = 0
    while True:
        count: int = await conn.fetchval(
            "WITH gone AS ("
            "  DELETE FROM idempotency_keys WHERE (user_id, key) IN ("
            "    SELECT user_id, key FROM idempotency_keys"
            "    WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)"
            "  RETURNING 1"
            ") SELECT count(*) FROM gone",
            float(ttl_s),
            batch,
        )
        deleted += count
        if count < batch:
            return deleted
