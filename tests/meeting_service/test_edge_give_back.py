"""A connection the meeting's edge handed to aiohttp comes back to the edge once
aiohttp has answered and nothing of it is left there (shared.server.RequestHandler's
give-back): the gateway's pooled connections carry every route, and the edge's
routes stay the edge's between them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from meeting_service.app import create_app
from meeting_service.settings import MeetingSettings
from shared.server import give_back_supported
from tests.gateway.raw_http import RawClient, request
from tests.gateway.test_edge import called
from tests.service_edge import served_by_the_edge


async def _meeting(aiohttp_client: Any, database_url: str, jwks_json: str) -> Any:
    settings = MeetingSettings(database_url=database_url, jwks=jwks_json)
    return await aiohttp_client(create_app(settings))


@dataclass
class Connected:
    meeting: Any
    client: RawClient
    made: asyncio.Event  # set when an edge is made for the connection (given back)
    served: list[str]  # what the edges served


@pytest.fixture
async def connected(
    aiohttp_client: Any, database_url: str, jwks_json: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Connected]:
    """A meeting service and a connection to it, its edge made."""
    served = served_by_the_edge(monkeypatch)
    made = called(monkeypatch, "connection_made")
    meeting = await _meeting(aiohttp_client, database_url, jwks_json)
    client = await RawClient.open(meeting.server.port)
    await made.wait()
    made.clear()
    yield Connected(meeting, client, made, served)
    await client.close()


def _create(token: str, name: str, **headers: str) -> bytes:
    body = f'{{"name": "{name}"}}'.encode()
    return request("POST", "/rooms", {"Authorization": f"Bearer {token}", **headers}, body)


async def test_after_aiohttp_s_answer_the_next_request_is_the_edge_s_again(connected, make_token):
    client, made, served = connected.client, connected.made, connected.served
    token = make_token("alice")
    steps = [
        (_create(token, "one"), 201),
        (request("GET", "/healthz"), 200),  # aiohttp's
        (_create(token, "two"), 201),
        (_create(token, "keyed", **{"Idempotency-Key": "k-1"}), 201),  # aiohttp's
        (request("GET", "/rooms/code/abc-abc-abc"), 404),
        (request("GET", "/rooms", {"Authorization": token}), 200),  # aiohttp's
        (_create(token, "three"), 201),
    ]
    for data, status in steps:
        client.send(data)
        assert (await client.answer()).status == status
        if status == 200 or b"Idempotency-Key" in data:
            await made.wait()  # given back: a new edge for the connection
            made.clear()
    assert served == ["POST /rooms", "POST /rooms", "GET /rooms/code/abc-abc-abc", "POST /rooms"]
    assert connected.meeting.server.runner.server.connections == []  # aiohttp keeps none


async def test_a_request_partly_in_keeps_the_connection_aiohttp_s_until_it_is_answered(
    connected, make_token
):
    client, made, served = connected.client, connected.made, connected.served
    token = make_token("alice")
    half = _create(token, "split", **{"X-Request-ID": "split"})
    client.send(request("GET", "/healthz") + half[:-5])
    assert (await client.answer()).status == 200
    client.send(half[-5:])
    answer = await client.answer()
    assert (answer.status, answer.header("X-Request-ID")) == (201, "split")
    assert served == []  # both aiohttp's: the second was partly in when the first was answered
    await made.wait()
    client.send(_create(token, "after"))
    assert (await client.answer()).status == 201
    assert served == ["POST /rooms"]
    await client.close()


async def test_after_an_upgrade_the_connection_stays_aiohttp_s(
    aiohttp_client, database_url, jwks_json, make_token, monkeypatch
):
    """aiohttp reads what follows an upgrade as it decides: nothing is given back."""
    served = served_by_the_edge(monkeypatch)
    meeting = await _meeting(aiohttp_client, database_url, jwks_json)
    token = make_token("alice")
    client = await RawClient.open(meeting.server.port)
    client.send(request("GET", "/healthz", {"Connection": "Upgrade", "Upgrade": "websocket"}))
    assert (await client.answer()).status == 200
    for name in ("one", "two"):
        client.send(_create(token, name))
        assert (await client.answer()).status == 201
    assert served == []
    assert len(meeting.server.runner.server.connections) == 1
    await client.close()


async def test_shutdown_closes_a_connection_given_back(
    aiohttp_client, database_url, jwks_json, make_token, monkeypatch
):
    made = called(monkeypatch, "connection_made")
    meeting = await _meeting(aiohttp_client, database_url, jwks_json)
    client = await RawClient.open(meeting.server.port)
    await made.wait()
    made.clear()
    client.send(request("GET", "/healthz"))
    assert (await client.answer()).status == 200
    await made.wait()
    await meeting.server.close()
    assert await client.closed()


def test_give_back_only_on_the_aiohttp_releases_it_was_tested_with():
    assert give_back_supported("3.14.5")
    assert not give_back_supported("3.15.0")
    assert not give_back_supported("4.0.0")


async def test_on_another_aiohttp_release_the_connection_stays_aiohttp_s(
    aiohttp_client, database_url, jwks_json, make_token, monkeypatch, caplog
):
    """Slower, never wrong: aiohttp answers every request after the first hand-off."""
    monkeypatch.setattr("shared.server.give_back_supported", lambda: False)
    served = served_by_the_edge(monkeypatch)
    meeting = await _meeting(aiohttp_client, database_url, jwks_json)
    token = make_token("alice")
    client = await RawClient.open(meeting.server.port)
    client.send(_create(token, "edge"))
    assert (await client.answer()).status == 201
    for data, status in [(request("GET", "/healthz"), 200), (_create(token, "aiohttp"), 201)]:
        client.send(data)
        assert (await client.answer()).status == status
    assert served == ["POST /rooms"]
    assert len(meeting.server.runner.server.connections) == 1  # aiohttp's for good
    told = [r for r in caplog.records if "give-back was tested" in r.getMessage()]
    assert len(told) == 1
    await client.close()
