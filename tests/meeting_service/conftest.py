"""The meeting suite runs each API test against the service alone and through the gateway."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meeting_service.app import create_app
from meeting_service.room_codes import CodeGenerator, new_room_code
from meeting_service.settings import MeetingSettings
from tests.conftest import bearer

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CODE = re.compile(r"^[a-z]{3}-[a-z]{3}-[a-z]{3}$")
ID = re.compile(r"^c[0-9a-z]{24}$")

TARGETS = ["service", "gateway"]

ServiceFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_service(database_url: str, jwks_json: str, aiohttp_client: Any) -> ServiceFactory:
    """The meeting service alone, optionally with its own room-code generator."""

    async def make(code_generator: CodeGenerator = new_room_code, **overrides: Any) -> TestClient:
        settings = MeetingSettings(database_url=database_url, jwks=jwks_json, **overrides)
        client: TestClient = await aiohttp_client(
            create_app(settings, code_generator=code_generator)
        )
        return client

    return make


@pytest.fixture
async def service(make_service: ServiceFactory) -> TestClient:
    return await make_service()


@pytest.fixture(params=TARGETS)
def api(request: pytest.FixtureRequest) -> TestClient:
    """A client of the meeting API: the service itself, or the gateway in front of it.
    Synchronous, so that it can pick either async fixture by name."""
    if request.param == "service":
        client: TestClient = request.getfixturevalue("service")
        return client
    stack = request.getfixturevalue("gateway_stack")
    client = stack.client
    return client


async def create_room(
    client: TestClient, token: str, expect: int = 201, **body: Any
) -> dict[str, Any]:
    response = await client.post("/rooms", json=body, headers=bearer(token))
    data: dict[str, Any] = await response.json()
    assert response.status == expect, data
    return data


async def join(client: TestClient, token: str, code: str, expect: int = 200) -> dict[str, Any]:
    response = await client.post(f"/rooms/code/{code}/join", headers=bearer(token))
    data: dict[str, Any] = await response.json()
    assert response.status == expect, data
    return data
