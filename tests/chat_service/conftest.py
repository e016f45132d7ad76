"""The chat API, tested the same way against the service alone and through the gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from chat_service.app import create_app
from chat_service.settings import ChatSettings

Headers = Callable[..., dict[str, str]]


@pytest.fixture
def chat_settings(database_url: str, jwks_json: str) -> ChatSettings:
    return ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4)


@pytest.fixture
async def service(aiohttp_client: Any, chat_settings: ChatSettings) -> TestClient:
    """The chat service alone: for what only it can show (concurrency, restarts)."""
    client: TestClient = await aiohttp_client(create_app(chat_settings))
    return client


@pytest.fixture(params=["service", "gateway"])
def api(request: pytest.FixtureRequest) -> TestClient:
    """A client of the chat API: the service itself, or the gateway in front of it.
    (A plain fixture, so that it may pick its async fixture by name.)"""
    if request.param == "service":
        client: TestClient = request.getfixturevalue("service")
        return client
    gateway: TestClient = request.getfixturevalue("gateway_stack").client
    return gateway


@pytest.fixture
def auth(make_token: Callable[..., str]) -> Headers:
    """auth("bob") -> headers with bob's token, as Bearer; auth("bob", bare=True) without."""
    tokens: dict[str, str] = {}

    def headers(username: str = "alice", *, bare: bool = False) -> dict[str, str]:
        token = tokens.setdefault(username, make_token(username))
        return {"Authorization": token if bare else f"Bearer {token}"}

    return headers
