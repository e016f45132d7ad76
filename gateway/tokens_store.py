"""Refresh tokens: opaque random strings, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from enum import Enum

from shared.db import Conn, advisory_lock_id
from shared.ids import new_id


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def issue_refresh_token(
    conn: Conn, user_id: str, ttl_s: int, family_id: str | None = None
) -> str:
    token = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at)"
        " VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        new_id(),
        family_id or new_id(),
        user_id,
        _hash(token),
        float(ttl_s),
    )
    return token


class Rotation(Enum):
    UNKNOWN = "unknown"
    REUSED = "reused"


async def _lock_family(conn: Conn, token: str) -> str | None:
    """The family of `token`, locked until the transaction ends; None if unknown.

    Rotation and logout both take this lock first, so they serialise per family:
    a logout waiting on a rotation then revokes the token that rotation issued,
    and a rotation waiting on a logout finds its token revoked."""
    family_id: str | None = await conn.fetchval(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1", _hash(token)
    )
    if family_id is not None:
        await _lock_families(conn, [family_id])
    return family_id


async def _lock_families(conn: Conn, family_ids: list[str]) -> None:
    # In one order, so that two lockers of several families never wait in a cycle.
    for family_id in sorted(family_ids):
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1)", advisory_lock_id(f"refresh_family:{family_id}")
        )


async def rotate(conn: Conn, token: str, ttl_s: int) -> tuple[str, str] | Rotation:
    """Spend `token` for a new one in the same family: (user id, new token).

    Presenting a token already spent or revoked revokes its whole family: one
    of the two holders is not the user. Call inside a transaction, and commit
    even when the answer is REUSED, so that the revocation sticks.
    """
    if await _lock_family(conn, token) is None:
        return Rotation.UNKNOWN
    # Read after the lock: a logout or rotation that held it has committed.
    row = await conn.fetchrow(
        "SELECT id, family_id, user_id, used_at, revoked_at, expires_at <= now() AS expired"
        " FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        _hash(token),
    )
    if row is None:  # expired, and purged meanwhile
        return Rotation.UNKNOWN
    if row["used_at"] is not None or row["revoked_at"] is not None:
        await revoke_family(conn, row["family_id"])
        return Rotation.REUSED
    if row["expired"]:
        return Rotation.UNKNOWN
    await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = $1", row["id"])
    new_token = await issue_refresh_token(conn, row["user_id"], ttl_s, row["family_id"])
    return row["user_id"], new_token


async def revoke_family(conn: Conn, family_id: str) -> int:
    """Revoke every token of the family; how many of them were live."""
    live: int = await conn.fetchval(
        "WITH revoked AS ("
        "  UPDATE refresh_tokens SET revoked_at = now()"
        "  WHERE family_id = $1 AND revoked_at IS NULL"
        "  RETURNING used_at, expires_at"
        ") SELECT count(*) FROM revoked WHERE used_at IS NULL AND expires_at > now()",
        family_id,
    )
    return live


async def revoke(conn: Conn, token: str) -> bool:
    """Log out: revoke the session (family) `token` belongs to; False when nothing
    of it was live. A token just spent by a rotation still ends the session it
    was rotated into: the holder asked to log out. Call inside a transaction."""
    family_id = await _lock_family(conn, token)
    if family_id is None:
        return False
    return await revoke_family(conn, family_id) > 0


async def purge_expired(conn: Conn, *, batch: int = 10_000) -> int:
    """Delete refresh tokens past their expiry: they can neither be refreshed nor
    give away a reuse any more. Live, spent and revoked tokens stay until then."""
    deleted = 0
    while True:
        count: int = await conn.fetchval(
            "WITH gone AS ("
            "  DELETE FROM refresh_tokens WHERE id IN ("
            "    SELECT id FROM refresh_tokens WHERE expires_at < now() LIMIT $1)"
            "  RETURNING id"
            ") SELECT count(*) FROM gone",
            batch,
        )
        deleted += count
        if count < batch:
            return deleted


async def revoke_user(conn: Conn, user_id: str) -> int:
    """Log a user out everywhere: revoke every refresh token of theirs; how many
    sessions (families) had a live one. Call inside a transaction: the families are
    locked as a logout locks them, so a rotation in flight cannot outlive this."""
    families = await conn.fetch(
        "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
    )
    await _lock_families(conn, [row["family_id"] for row in families])
    sessions: int = await conn.fetchval(
        "WITH revoked AS ("
        "  UPDATE refresh_tokens SET revoked_at = now()"
        "  WHERE user_id = $1 AND revoked_at IS NULL"
        "  RETURNING family_id, used_at, expires_at"
        ") SELECT count(DISTINCT family_id) FROM revoked"
        " WHERE used_at IS NULL AND expires_at > now()",
        user_id,
    )
    return sessions
