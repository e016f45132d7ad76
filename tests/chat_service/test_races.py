"""Simultaneous requests that touch the same rows: exact outcomes, never a 500."""

from __future__ import annotations

import asyncio

from tests.chat_service.helpers import call, create_room, join, send, until_waiting_on_a_lock


async def test_simultaneous_joins_of_one_user_make_one_membership(service, auth, db):
    room_id = await create_room(service, auth("alice"), "General")
    results = await asyncio.gather(*(join(service, auth("bob"), "general") for _ in range(30)))
    expected = {"message": 'bob joined room "General"', "room_id": room_id, "room_name": "General"}
    assert results == [(200, expected)] * 30
    assert await db.fetchval("SELECT count(*) FROM chat.room_members WHERE username = 'bob'") == 1


async def test_sends_racing_a_deletion_are_stored_or_refused(service, auth, db):
    room_id = await create_room(service, auth("alice"), "General")
    await join(service, auth("bob"), "General")
    sends = [send(service, auth("bob"), room_id, f"m{n}") for n in range(30)]
    deletion = call(service, "POST", "/api/delete_room", auth("alice"), json={"room_id": room_id})
    *sent, deleted = await asyncio.gather(*sends, deletion)
    assert deleted == (200, {"message": 'room "General" deleted'})
    assert {status for status, _ in sent} <= {201, 404}
    refused = [body for status, body in sent if status == 404]
    assert refused == [{"error": "room not found", "code": "room_not_found"}] * len(refused)
    assert await db.fetchval("SELECT count(*) FROM chat.room_messages") == 0


async def test_a_send_waiting_on_a_deletion_of_its_room_is_a_404_and_stores_nothing(
    service, auth, db
):
    """The send's statement waits on the room's row while a deletion holds it; once
    the deletion commits, the row it waited for is gone: no room, so 404, and the
    insert (which needed that row) never ran."""
    room_id = await create_room(service, auth("alice"), "General")
    async with db.transaction():
        await db.execute("DELETE FROM chat.rooms WHERE id = $1", room_id)
        sending = asyncio.ensure_future(send(service, auth("alice"), room_id, "too late"))
        await until_waiting_on_a_lock(db, sending)
    assert await sending == (404, {"error": "room not found", "code": "room_not_found"})
    assert await db.fetchval("SELECT count(*) FROM chat.room_messages") == 0


async def test_deleting_and_recreating_under_a_full_quota(service, auth, db):
    ids = [await create_room(service, auth("alice"), f"room {n}") for n in range(5)]
    deletions = [
        call(service, "POST", "/api/delete_room", auth("alice"), json={"room_id": room_id})
        for room_id in ids[:2]
    ]
    creations = [
        call(service, "POST", "/api/create_room", auth(f"u{n}"), json={"room_name": f"new {n}"})
        for n in range(20)
    ]
    results = await asyncio.gather(*deletions, *creations)
    assert [status for status, _ in results[:2]] == [200, 200]
    created = sum(1 for status, _ in results[2:] if status == 201)
    assert created <= 2
    assert await db.fetchval("SELECT count(*) FROM chat.rooms WHERE NOT is_private") == 3 + created
    assert await db.fetchval("SELECT count(*) FROM chat.rooms WHERE NOT is_private") <= 5
