"""The asyncpg pool and the migration runner."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
from aiohttp import web

from shared.errors import FAULTS
from shared.pool import new_pool
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

POOL_KEY = web.AppKey("pool", asyncpg.Pool)
# A connection of its own or one lent by the pool: stores take either.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
_MIGRATION_NAME = re.compile(r"^(\d+)_[\w-]+\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def migration_files(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.iterdir():
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    found.sort()
    versions = [version for version, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number in {directory}")
    return found


def _checked(schema: str) -> str:
    """Schema names go into SQL text (identifiers cannot be parameters), so only plain ones."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"bad schema name {schema!r}")
    return schema


def advisory_lock_id(name: str) -> int:
    """A stable 64-bit Postgres advisory-lock key for a named lock."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def migrate(conn: Conn, schema: str, directory: Path) -> list[int]:
    """Apply the migrations not yet recorded, in one transaction, under an advisory
    lock: replicas starting together apply each migration exactly once."""
    schema = _checked(schema)
    applied_now = []
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1)", advisory_lock_id(f"migrate:{schema}")
        )
        # A deployment may create the schema for a role that cannot create schemas
        # (docker-compose.yml does): only create it when it is missing.
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"SET LOCAL search_path TO {schema}")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {
            row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")
        }
        for version, path in migration_files(directory):
            if version in applied:
                continue
            await conn.execute(path.read_text())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, path.name
            )
            applied_now.append(version)
    if applied_now:
        log.info("migrations applied", extra={"schema": schema, "versions": applied_now})
    return applied_now


async def pending_migrations(conn: Conn, schema: str, directory: Path) -> list[int]:
    wanted = {version for version, _ in migration_files(directory)}
    schema = _checked(schema)
    rows = await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")  # noqa: S608
    return sorted(wanted - {row["version"] for row in rows})


async def create_pool(settings: CommonSettings, schema: str) -> asyncpg.Pool:
    """A pool whose connections see only `schema`; waits for the database to come up."""
    deadline = asyncio.get_running_loop().time() + settings.db_connect_timeout_s
    delay = 0.1
    while True:
        try:
            # reset: shared.pool.keep_session, no reset query on release.
            pool = await new_pool(
                settings.database_url,
                min_size=settings.db_pool_min_size,
                max_size=settings.db_pool_max_size,
                command_timeout=settings.db_command_timeout_s,
                server_settings={"search_path": schema, "application_name": schema},
            )
            return pool
        except FAULTS as exc:
            if asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.warning("database not reachable yet", extra={"error": repr(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def database_ctx(
    settings: CommonSettings, schema: str, migrations: Path
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(settings, schema)
        try:
            async with pool.acquire() as conn:
                await migrate(conn, schema, migrations)
            app[POOL_KEY] = pool
            yield
        finally:
            await pool.close()

    return ctx


def database_ready(schema: str, migrations: Path) -> Callable[[web.Application], Awaitable[bool]]:
    async def check(app: web.Application) -> bool:
        async with app[POOL_KEY].acquire(timeout=2) as conn:
            return not await pending_migrations(conn, schema, migrations)

    return check
