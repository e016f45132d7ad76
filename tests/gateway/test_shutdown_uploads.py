"""A graceful shutdown (every deploy's SIGTERM) finishes a request whose body is still
uploading when it starts: the rest of the body is read, the request answered with
`Connection: close`, and only then is the connection closed; a request pipelined
behind it is not taken, and one still not all in when the shutdown timeout passes is
cut without an answer. The gateway's edge (gateway.edge), a gateway without it
(aiohttp, shared.server.RequestHandler) and a service directly, in front of the real
chat service, all do so, the two gateways byte for byte alike."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from chat_service.app import create_app as create_chat
from chat_service.settings import ChatSettings
from gateway.app import create_app as create_gateway
from gateway.edge_request import Decider
from shared.server import FRONT_KEY, Server
from tests.conftest import gateway_settings_for
from tests.gateway.raw_http import Answer, RawClient, request

DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


def begun_events(monkeypatch: Any) -> tuple[asyncio.Event, asyncio.Event]:
    """Set when a request has begun (the edge took its head, or an aiohttp handler
    is reading its body), and when a server's shutdown has begun (its connections
    told to close, and the wait for them under way)."""
    begun, stopping = asyncio.Event(), asyncio.Event()
    decide, read, shutdown = Decider.decide, web.BaseRequest.read, Server.shutdown

    def decided(self: Decider, *args: Any, **kwargs: Any) -> Any:
        taken = decide(self, *args, **kwargs)
        if taken is not None:
            begun.set()
        return taken

    async def reading(self: web.BaseRequest) -> bytes:
        begun.set()
        return await read(self)

    async def shutting_down(self: Server, timeout: float | None = None) -> None:  # noqa: ASYNC109
        stopping.set()
        await shutdown(self, timeout)

    monkeypatch.setattr(Decider, "decide", decided)
    monkeypatch.setattr(web.BaseRequest, "read", reading)
    monkeypatch.setattr(Server, "shutdown", shutting_down)
    return begun, stopping


async def _upload_across_shutdown(
    server: Any, token: str, name: str, events: tuple[asyncio.Event, asyncio.Event]
) -> Answer:
    """Sends a create_room request with half its body, shuts the server down, sends
    the rest and one more request behind it; the one answer, the connection closed."""
    begun, stopping = events
    begun.clear()
    stopping.clear()
    headers = {"Authorization": token, "Content-Type": "application/json", "X-Request-ID": "up"}
    body = json.dumps({"room_name": name}).encode()
    data = request("POST", "/api/create_room", headers, body)
    behind = request(
        "POST", "/api/create_room", headers, json.dumps({"room_name": "Behind"}).encode()
    )
    client = await RawClient.open(server.port)
    client.send(data[: -len(body) // 2])
    await begun.wait()
    closing = asyncio.create_task(server.close())
    await stopping.wait()
    client.send(data[-len(body) // 2 :] + behind)
    answer = await client.answer()
    assert await client.closed()  # after the answer, and nothing for the request behind
    await client.close()
    await closing
    return answer


async def _rooms(service: Any, token: str) -> dict[str, int]:
    """The public rooms the service has stored: name -> room_id."""
    async with aiohttp.ClientSession() as session:
        url = service.make_url("/api/rooms")
        async with session.get(url, headers={"Authorization": token}) as response:
            assert response.status == 200
            rooms = (await response.json())["rooms"]
    return {room["name"]: room["room_id"] for room in rooms}


def _normalized(answer: Answer, room_id: int) -> bytes:
    """The answer's bytes but for its date and its room (name and id)."""
    raw = DATE.sub(b"\r\nDate: -\r\n", answer.raw)
    raw = re.sub(rb'"Upload [A-Z]\\"', b'"Upload -\\"', raw)
    return raw.replace(b'"room_id":%d}' % room_id, b'"room_id":-}')


async def test_an_upload_under_way_at_shutdown_is_answered(
    gateway_pair, aiohttp_server, database_url, jwks_json, make_token, monkeypatch
):
    settings = ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4)
    chat = await aiohttp_server(create_chat(settings))
    edge, plain = await gateway_pair(str(chat.make_url("")))
    events = begun_events(monkeypatch)
    token = make_token("alice")
    answers = {
        "Upload A": await _upload_across_shutdown(edge.server, token, "Upload A", events),
        "Upload B": await _upload_across_shutdown(plain.server, token, "Upload B", events),
        # A service directly: a second chat service process, shut down the same way.
        "Upload C": await _upload_across_shutdown(
            await aiohttp_server(create_chat(settings)), token, "Upload C", events
        ),
    }
    # Each was stored, as its answer says; the requests behind them were not taken.
    listed = await _rooms(chat, token)
    assert sorted(listed) == sorted(answers)
    for name, answer in answers.items():
        assert answer.status == 201
        assert json.loads(answer.body) == {
            "message": f'room "{name}" created',
            "room_id": listed[name],
        }
        assert answer.header("Connection") == "close"
        assert answer.header("X-Request-ID") == "up"
    # The gateway with its edge and the one without answered alike.
    a, b = answers["Upload A"], answers["Upload B"]
    assert _normalized(a, listed["Upload A"]) == _normalized(b, listed["Upload B"])


@pytest.mark.parametrize("edge", [True, False], ids=["edge", "without-edge"])
async def test_an_upload_stalled_past_the_shutdown_timeout_is_cut(
    aiohttp_server, database_url, signing_key, jwks_json, make_token, monkeypatch, edge
):
    """A request begun does not hold the shutdown past its timeout: its body still
    not all in then, the connection is closed without an answer, nothing stored."""
    settings = ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4)
    chat = await aiohttp_server(create_chat(settings))
    url = str(chat.make_url(""))
    app = create_gateway(
        gateway_settings_for(database_url, signing_key, chat_url=url, meeting_url=url)
    )
    if not edge:
        del app[FRONT_KEY]
    gateway = await aiohttp_server(app, shutdown_timeout=0.5)
    begun, _ = begun_events(monkeypatch)
    token = make_token("alice")
    body = json.dumps({"room_name": "Stalled"}).encode()
    headers = {"Authorization": token, "Content-Type": "application/json"}
    client = await RawClient.open(gateway.port)
    client.send(request("POST", "/api/create_room", headers, body)[:-4])
    await begun.wait()
    await gateway.close()  # the shutdown timeout passes; the rest never comes
    assert await client.closed()  # with nothing said
    await client.close()
    assert await _rooms(chat, token) == {}
