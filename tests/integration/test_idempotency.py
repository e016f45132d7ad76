"""Idempotency-Key on the four creating endpoints, through the gateway: a retry gets
the first answer and stores nothing new; another body with the key is a 422; a
retry racing the original stores one; keys are per user."""

import asyncio
import json

import pytest

from shared import idempotency_store
from shared.idempotency import TTL_S
from tests.conftest import bearer

REUSED = {
    "error": "idempotency key reused with a different request",
    "code": "idempotency_key_reused",
}


class Endpoint:
    """One creating endpoint: how to call it, and how many things it has stored."""

    def __init__(self, name, path, body, other_body, count_sql):
        self.name = name
        self._path = path
        self.body = body
        self.other_body = other_body
        self.count_sql = count_sql

    async def prepare(self, client, token):
        """What the endpoint needs to exist first (a room to send to)."""
        self.context = {}
        if "{chat_room}" in self._path or "chat_room" in json.dumps(self.body):
            r = await client.post(
                "/api/create_room",
                json={"room_name": "General", "is_private": 0},
                headers=bearer(token),
            )
            self.context["chat_room"] = (await r.json())["room_id"]
        if "{meeting_room}" in self._path:
            r = await client.post("/rooms", json={}, headers=bearer(token))
            self.context["meeting_room"] = (await r.json())["id"]

    def path(self):
        return self._path.format(**self.context)

    def payload(self, body):
        text = json.dumps(body)
        for name, value in self.context.items():
            text = text.replace(f'"{{{name}}}"', json.dumps(value))
        return json.loads(text)

    async def post(self, client, token, key, body=None):
        headers = {**bearer(token), "Idempotency-Key": key}
        return await client.post(self.path(), json=self.payload(body or self.body), headers=headers)

    async def count(self, db):
        return await db.fetchval(self.count_sql)


ENDPOINTS = [
    Endpoint(
        "create_room",
        "/api/create_room",
        {"room_name": "Retry Room", "is_private": 0},
        {"room_name": "Other Room", "is_private": 0},
        "SELECT count(*) FROM chat.rooms WHERE name <> 'General'",
    ),
    Endpoint(
        "send_room_message",
        "/api/send_room_message",
        {"room_id": "{chat_room}", "message": "hello once"},
        {"room_id": "{chat_room}", "message": "something else"},
        "SELECT count(*) FROM chat.room_messages",
    ),
    Endpoint(
        "meeting create",
        "/rooms",
        {"name": "Retry Meeting"},
        {"name": "Other Meeting"},
        "SELECT count(*) FROM meeting.rooms WHERE name <> 'Meeting Room'",
    ),
    Endpoint(
        "meeting message",
        "/rooms/{meeting_room}/messages",
        {"content": "hello once"},
        {"content": "something else"},
        "SELECT count(*) FROM meeting.messages",
    ),
]


@pytest.fixture(params=ENDPOINTS, ids=lambda e: e.name)
async def endpoint(request, gateway_stack, make_token):
    endpoint = request.param
    await endpoint.prepare(gateway_stack.client, make_token("alice"))
    return endpoint


async def test_a_retry_gets_the_first_answer_and_stores_nothing_new(
    gateway_stack, endpoint, make_token, db
):
    client, token = gateway_stack.client, make_token("alice")
    before = await endpoint.count(db)
    first = await endpoint.post(client, token, "key-1")
    assert first.status == 201
    first_body = await first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert await endpoint.count(db) == before + 1
    for _ in range(2):
        retry = await endpoint.post(client, token, "key-1")
        assert retry.status == 201
        assert await retry.json() == first_body
        assert retry.headers["Idempotent-Replayed"] == "true"
    assert await endpoint.count(db) == before + 1
    # Another key is another request.
    other = await endpoint.post(client, token, "key-2", endpoint.other_body)
    assert other.status == 201
    assert await other.json() != first_body
    assert await endpoint.count(db) == before + 2


async def test_the_same_key_with_another_body_is_a_422(gateway_stack, endpoint, make_token, db):
    client, token = gateway_stack.client, make_token("alice")
    assert (await endpoint.post(client, token, "key-1")).status == 201
    count = await endpoint.count(db)
    r = await endpoint.post(client, token, "key-1", endpoint.other_body)
    assert r.status == 422
    assert await r.json() == REUSED
    assert await endpoint.count(db) == count


async def test_retries_racing_the_original_store_one(gateway_stack, endpoint, make_token, db):
    client, token = gateway_stack.client, make_token("alice")
    before = await endpoint.count(db)
    answers = await asyncio.gather(*(endpoint.post(client, token, "raced") for _ in range(20)))
    assert [r.status for r in answers] == [201] * 20
    bodies = [await r.json() for r in answers]
    assert all(body == bodies[0] for body in bodies)
    assert sum("Idempotent-Replayed" not in r.headers for r in answers) == 1
    assert await endpoint.count(db) == before + 1


async def test_keys_are_per_user(gateway_stack, endpoint, make_token, db):
    client = gateway_stack.client
    alice, bob = make_token("alice"), make_token("bob")
    if endpoint.name == "send_room_message":
        await client.post("/api/join_room", json={"name": "General"}, headers=bearer(bob))
    if endpoint.name == "meeting message":
        r = await client.get(f"/rooms/{endpoint.context['meeting_room']}", headers=bearer(alice))
        code = (await r.json())["code"]
        r = await client.post(f"/rooms/code/{code}/join", json={}, headers=bearer(bob))
        assert r.status in (200, 201), await r.text()
    before = await endpoint.count(db)
    body = endpoint.body
    if endpoint.name == "create_room":
        body = {"room_name": "Alice Room", "is_private": 0}
    r = await endpoint.post(client, alice, "shared-key", body)
    assert r.status == 201
    if endpoint.name == "create_room":
        body = {"room_name": "Bob Room", "is_private": 0}
    r = await endpoint.post(client, bob, "shared-key", body)
    assert r.status == 201
    assert "Idempotent-Replayed" not in r.headers
    assert await endpoint.count(db) == before + 2


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_a_key_out_of_bounds_is_a_400(gateway_stack, make_token, db, key):
    r = await gateway_stack.client.post(
        "/rooms", json={}, headers={**bearer(make_token("alice")), "Idempotency-Key": key}
    )
    assert r.status == 400
    assert await r.json() == {
        "error": "Idempotency-Key: must be 1 to 255 characters",
        "code": "invalid_idempotency_key",
    }
    assert await db.fetchval("SELECT count(*) FROM meeting.rooms") == 0


async def test_a_refused_request_keeps_nothing_and_its_retry_is_judged_afresh(
    gateway_stack, make_token, db
):
    client, token = gateway_stack.client, make_token("alice")
    headers = {**bearer(token), "Idempotency-Key": "k"}
    body = {"room_id": 999, "message": "to nowhere"}
    r = await client.post("/api/send_room_message", json=body, headers=headers)
    assert r.status == 404
    assert await db.fetchval("SELECT count(*) FROM chat.idempotency_keys") == 0


async def test_keys_older_than_a_day_are_purged_and_can_be_used_again(
    gateway_stack, make_token, db
):
    client, token = gateway_stack.client, make_token("alice")
    headers = {**bearer(token), "Idempotency-Key": "old"}
    assert (await client.post("/rooms", json={"name": "First"}, headers=headers)).status == 201
    await db.execute("UPDATE meeting.idempotency_keys SET created_at = now() - interval '25 hours'")
    # An expired key is a new request, even before the purge ran.
    r = await client.post("/rooms", json={"name": "Second"}, headers=headers)
    assert r.status == 201
    assert "Idempotent-Replayed" not in r.headers
    await db.execute("UPDATE meeting.idempotency_keys SET created_at = now() - interval '25 hours'")
    await db.execute("SET search_path TO meeting")
    assert await idempotency_store.purge(db, TTL_S) == 1
    assert await db.fetchval("SELECT count(*) FROM meeting.idempotency_keys") == 0
