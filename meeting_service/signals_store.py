"""WebRTC signals between two joined participants of a room, across replicas.

A signal goes out with the transaction that checked both ends are joined, so it
is ordered with leaves and removals: a participant who left before it committed
never receives it. A small one travels inside the notification; one too large
for a NOTIFY payload (8000 bytes; an SDP offer with its candidates often is) is
written to the `signals` table and the notification names its id: each replica
with a socket in the room reads it once. Rows are purged after `signal_ttl_s`.
Nothing of a signal's content is ever logged."""

from __future__ import annotations

import json
from typing import Any

from meeting_service.refusals import Refusal, Refused
from meeting_service.store import Pool
from shared.ids import new_id
from shared.realtime import MAX_PAYLOAD_BYTES, Event, Publisher

# Room for the envelope the broadcaster wraps around an event.
INLINE_MAX_BYTES = MAX_PAYLOAD_BYTES - 200


async def send_signal(
    pool: Pool,
    events: Publisher,
    room_id: str,
    sender_id: str,
    recipient_id: str,
    kind: str,
    data: dict[str, Any],
) -> None:
    # As the notification would carry it (ASCII, so every byte counted).
    text = json.dumps(data, separators=(",", ":"))
    async with pool.acquire() as conn, conn.transaction():
        # Share locks: a leave or removal of either end waits for this commit, so
        # its event comes after the signal's, and stops what follows.
        rows = await conn.fetch(
            "SELECT id, status FROM participants"
            " WHERE room_id = $1 AND id = ANY($2::text[]) FOR SHARE",
            room_id,
            [sender_id, recipient_id],
        )
        status = {row["id"]: row["status"] for row in rows}
        if status.get(sender_id) != "joined":
            raise Refused(Refusal.NOT_IN_ROOM)
        if status.get(recipient_id) != "joined":
            raise Refused(Refusal.PARTICIPANT_NOT_FOUND)
        event: Event = {
            "type": "signal",
            "roomId": room_id,
            "from": sender_id,
            "to": recipient_id,
            "kind": kind,
        }
        if len(text) <= INLINE_MAX_BYTES:
            event["data"] = data
        else:
            signal_id = new_id()
            await conn.execute(
                "INSERT INTO signals (id, room_id, sender_id, recipient_id, kind, data)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                signal_id,
                room_id,
                sender_id,
                recipient_id,
                kind,
                text,
            )
            event["signalId"] = signal_id
        await events.publish(conn, topic=room_id, event=event)


async def expand_signal(pool: Pool, event: Event) -> Event | None:
    """A notified signal as its recipient gets it (still addressed, for the filter)."""
    if "signalId" not in event:
        return event
    row = await pool.fetchrow(
        "SELECT room_id, sender_id, recipient_id, kind, data FROM signals WHERE id = $1",
        event["signalId"],
    )
    if row is None:
        return None  # purged: the peers negotiate again
    return {
        "type": "signal",
        "roomId": row["room_id"],
        "from": row["sender_id"],
        "to": row["recipient_id"],
        "kind": row["kind"],
        "data": json.loads(row["data"]),
    }


async def purge_signals(pool: Pool, ttl_s: float) -> None:
    await pool.execute(
        "DELETE FROM signals WHERE created_at < now() - make_interval(secs => $1)", ttl_s
    )
