"""A replica keeps answering while another replica applies an additive migration.

asyncpg caches prepared statements per connection and re-prepares a stale one
only outside a transaction: a `SELECT *` whose row type grew fails inside one
with InvalidCachedStatementError. The stores name their columns, so it never does."""

from __future__ import annotations

import shutil
from pathlib import Path

from meeting_service.app import MIGRATIONS, create_app
from meeting_service.settings import MeetingSettings
from shared.db import migrate
from tests.conftest import bearer
from tests.meeting_service.conftest import create_room, join

ADDITIVE = """
ALTER TABLE rooms ADD COLUMN rolling_note text;
ALTER TABLE participants ADD COLUMN rolling_note text;
ALTER TABLE messages ADD COLUMN rolling_note text;
"""


async def every_operation(client, alice, bob, carol) -> None:
    """Each store operation once, each answering its success status."""
    room = await create_room(client, alice, waitingRoom=True)
    rid = room["id"]

    async def call(method, path, token, expect=200, **kwargs):
        response = await client.request(method, path, headers=bearer(token), **kwargs)
        body = await response.json() if response.status != 204 else None
        assert response.status == expect, (method, path, body)
        return body

    await call("GET", f"/rooms/{rid}", alice)
    await call("GET", f"/rooms/code/{room['code']}", alice)
    await call("GET", "/rooms", alice)
    await call("PATCH", f"/rooms/{rid}/settings", alice, json={"name": "Renamed"})
    waiting = (await join(client, bob, room["code"]))["participant"]
    await call("POST", f"/rooms/{rid}/participants/{waiting['id']}/admit", alice)
    denied = (await join(client, carol, room["code"]))["participant"]
    await call("POST", f"/rooms/{rid}/participants/{denied['id']}/deny", alice)
    await call("GET", f"/rooms/{rid}/participants", bob)
    await call("POST", f"/rooms/{rid}/messages", bob, expect=201, json={"content": "hi"})
    await call("GET", f"/rooms/{rid}/messages", alice)
    await call("POST", f"/rooms/{rid}/leave", bob)
    await call("DELETE", f"/rooms/{rid}/participants/{waiting['id']}", alice, expect=204)
    await call("POST", f"/rooms/{rid}/end", alice)


async def test_a_replica_keeps_answering_while_another_migrates(
    aiohttp_client, database_url, jwks_json, make_token, db, tmp_path: Path
):
    # One connection for requests (the other holds LISTEN), so the statements
    # cached before the migration are the ones used after it.
    settings = MeetingSettings(database_url=database_url, jwks=jwks_json, db_pool_max_size=2)
    replica = await aiohttp_client(create_app(settings))
    alice, bob, carol = make_token("alice"), make_token("bob"), make_token("carol")
    await every_operation(replica, alice, bob, carol)

    # Another replica of a newer release starts and migrates the shared schema.
    newer = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, newer)
    (newer / "900_rolling_note.sql").write_text(ADDITIVE)
    assert await migrate(db, "meeting", newer) == [900]

    await every_operation(replica, alice, bob, carol)
