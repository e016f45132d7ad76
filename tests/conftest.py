"""Fixtures every test suite shares: a real Postgres, a fresh database per test,
and a signing key with which tests mint tokens the way the gateway does."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.keys import SigningKey, TokenIssuer
from shared.embedded_pg import EmbeddedPostgres
from shared.server import SERVER_OPTIONS, AppRunner
from shared.settings import CommonSettings

ISSUER = CommonSettings().jwt_issuer
AUDIENCE = CommonSettings().jwt_audience


E2E_DIR = Path(__file__).parent / "e2e"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--e2e", action="store_true", help="run the browser suite in tests/e2e (make e2e)"
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The browser suite needs chromium and Playwright: `make e2e` runs it, `make test` not."""
    if collection_path == E2E_DIR and not config.getoption("--e2e"):
        return True
    return None


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


async def _without_durability(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            await conn.execute(f"ALTER SYSTEM SET {setting} = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


class _Uncoded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "error message without a code":
            self.messages.append(getattr(record, "error_message", "?"))


@pytest.fixture(autouse=True)
def every_error_has_a_code() -> Iterator[None]:
    """An error answered during a test whose message is not in shared/error_codes.py
    fails that test: add the message and its code to the table."""
    handler = _Uncoded()
    logger = logging.getLogger("shared.errors")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert handler.messages == [], "error messages without a code in shared/error_codes.py"


@pytest.fixture(scope="session")
def embedded_postgres() -> Iterator[EmbeddedPostgres | None]:
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="rooms-test-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = server.start()
        # Test data is thrown away: durability only costs time here.
        asyncio.run(_without_durability(dsn))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def admin_dsn(embedded_postgres: EmbeddedPostgres | None) -> str:
    if embedded_postgres is None:
        return os.environ["DATABASE_URL"]
    return embedded_postgres.start()


@pytest.fixture
async def database_url(admin_dsn: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield with_database(admin_dsn, name)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection, for asserting what was stored."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="session")
def jwks_json(signing_key: SigningKey) -> str:
    return json.dumps(signing_key.jwks())


@pytest.fixture(scope="session")
def issuer(signing_key: SigningKey) -> TokenIssuer:
    return TokenIssuer(signing_key, issuer=ISSUER, audience=AUDIENCE)


TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def make_token(issuer: TokenIssuer) -> TokenFactory:
    """make_token("alice") -> a valid user token; role="guest" for a guest."""

    def make(
        username: str = "alice",
        *,
        role: Any = "user",
        user_id: str | None = None,
        name: str | None = None,
        picture: str | None = None,
        ttl_s: int = 900,
    ) -> str:
        return issuer.access_token(
            subject=user_id or f"u_{username}",
            username=None if role == "guest" else username,
            name=name or username,
            picture=picture,
            role=role,
            ttl_s=ttl_s,
        )

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Stack:
    """The gateway with both services behind it, all on one database."""

    def __init__(self, client: Any, chat: Any, meeting: Any, gateway_settings: Any) -> None:
        self.client = client
        self.chat = chat
        self.meeting = meeting
        self.gateway_settings = gateway_settings


def gateway_settings_for(database_url: str, signing_key: SigningKey, **overrides: Any) -> Any:
    from gateway.settings import GatewaySettings

    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_private_key": signing_key.to_pem().decode(),
        "bcrypt_rounds": 4,
        **overrides,
    }
    return GatewaySettings(**values)


StackFactory = Callable[..., Any]


@pytest.fixture
def make_stack(
    aiohttp_client: Any,
    aiohttp_server: Any,
    database_url: str,
    signing_key: SigningKey,
    jwks_json: str,
) -> StackFactory:
    """make_stack(**meeting_settings) -> a Stack whose meeting service has those settings."""
    from chat_service.app import create_app as create_chat
    from chat_service.settings import ChatSettings
    from gateway.app import create_app as create_gateway
    from meeting_service.app import create_app as create_meeting
    from meeting_service.settings import MeetingSettings

    async def make(**meeting_settings: Any) -> Stack:
        chat = await aiohttp_server(
            create_chat(ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4))
        )
        meeting = await aiohttp_server(
            create_meeting(
                MeetingSettings(database_url=database_url, jwks=jwks_json, **meeting_settings)
            )
        )
        settings = gateway_settings_for(
            database_url,
            signing_key,
            chat_url=str(chat.make_url("")),
            meeting_url=str(meeting.make_url("")),
        )
        client = await aiohttp_client(create_gateway(settings))
        return Stack(client, chat, meeting, settings)

    return make


@pytest.fixture
async def gateway_stack(make_stack: StackFactory) -> Stack:
    """`.client` talks to the gateway; tokens from `make_token` are valid through it."""
    stack: Stack = await make_stack()
    return stack


class ServiceTestServer(TestServer):
    """A test server that serves as the processes do (shared.server)."""

    async def _make_runner(self, **kwargs: Any) -> AppRunner:
        return AppRunner(self.app, **{**kwargs, **SERVER_OPTIONS})


# Apps are torn down before their database is dropped: these depend on
# `database_url`, so pytest sets them up after it and tears them down before.
@pytest.fixture
def aiohttp_client(database_url: str, aiohttp_client: Any) -> Any:
    async def client(app_or_server: Any, **kwargs: Any) -> Any:
        if isinstance(app_or_server, web.Application):
            app_or_server = ServiceTestServer(app_or_server)
        return await aiohttp_client(app_or_server, **kwargs)

    return client


@pytest.fixture
async def aiohttp_server(database_url: str) -> AsyncIterator[Any]:
    servers: list[ServiceTestServer] = []

    async def server(
        app: web.Application, *, host: str = "127.0.0.1", port: int | None = None, **kwargs: Any
    ) -> ServiceTestServer:
        started = ServiceTestServer(app, host=host, port=port)
        await started.start_server(**kwargs)
        servers.append(started)
        return started

    yield server
    while servers:
        await servers.pop().close()
