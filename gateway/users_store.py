"""Users: SQL only, no HTTP."""

from __future__ import annotations

import asyncpg

from gateway.models import RegisterIn, User
from shared.db import Conn
from shared.errors import ApiError
from shared.ids import new_id

_TAKEN = {
    "users_username_key": "username already taken",
    "users_email_key": "email already registered",
}


async def create_user(
    conn: Conn,
    *,
    username: str,
    email: str | None,
    password_hash: str,
    display_name: str,
    avatar_url: str | None,
) -> User:
    try:
        row = await conn.fetchrow(
            "INSERT INTO users (id, username, email, password_hash, display_name, avatar_url)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            " RETURNING id, username, email, password_hash, display_name, avatar_url, created_at",
            new_id(),
            username,
            email,
            password_hash,
            display_name,
            avatar_url,
        )
    except asyncpg.UniqueViolationError as exc:
        raise ApiError(409, _TAKEN.get(exc.constraint_name or "", "already registered")) from None
    assert row is not None
    return User.model_validate(dict(row))


async def register(conn: Conn, body: RegisterIn, password_hash: str) -> User:
    """The account a registration asks for (the display name defaults to the username)."""
    return await create_user(
        conn,
        username=body.username,
        email=body.email,
        password_hash=password_hash,
        display_name=body.display_name or body.username,
        avatar_url=body.avatar_url,
    )


async def find_for_login(conn: Conn, *, username: str | None, email: str | None) -> User | None:
    if username is not None:
        row = await conn.fetchrow(
            "SELECT id, username, email, password_hash, display_name, avatar_url, created_at"
            " FROM users WHERE lower(username) = lower($1)",
            username,
        )
    else:
        row = await conn.fetchrow(
            "SELECT id, username, email, password_hash, display_name, avatar_url, created_at"
            " FROM users WHERE lower(email) = lower($1)",
            email,
        )
    return User.model_validate(dict(row)) if row else None


async def get_user(conn: Conn, user_id: str) -> User | None:
    row = await conn.fetchrow(
        "SELECT id, username, email, password_hash, display_name, avatar_url, created_at"
        " FROM users WHERE id = $1",
        user_id,
    )
    return User.model_validate(dict(row)) if row else None


async def update_profile(conn: Conn, user_id: str, changes: dict[str, str | None]) -> User | None:
    """`changes` maps display_name / avatar_url to their new values (None clears the avatar)."""
    row = await conn.fetchrow(
        "UPDATE users SET"
        " display_name = CASE WHEN $2 THEN $3 ELSE display_name END,"
        " avatar_url = CASE WHEN $4 THEN $5 ELSE avatar_url END,"
        " updated_at = now()"
        " WHERE id = $1"
        " RETURNING id, username, email, password_hash, display_name, avatar_url, created_at",
        user_id,
        "display_name" in changes,
        changes.get("display_name"),
        "avatar_url" in changes,
        changes.get("avatar_url"),
    )
    return User.model_validate(dict(row)) if row else None


async def set_password(conn: Conn, user_id: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
        user_id,
        password_hash,
    )
