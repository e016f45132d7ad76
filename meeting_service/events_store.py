"""Live events: a notified reference turned into the full object clients get,
once per replica."""

from __future__ import annotations

from typing import Any

from meeting_service.models import Message, Participant, RoomDetail
from meeting_service.signals_store import expand_signal
from meeting_service.store import (
    MESSAGE_COLUMNS,
    PARTICIPANT_COLUMNS,
    ROOM_BY_ID,
    Pool,
    message,
    participant,
    room_detail,
)
from shared.realtime import Event

PARTICIPANT_BY_ID = f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE id = $1"
MESSAGE_BY_ID = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"


async def expand_event(pool: Pool, event: Event) -> Event | None:
    kind = str(event.get("type", ""))
    if kind == "signal":
        return await expand_signal(pool, event)
    room_id = event.get("roomId")
    async with pool.acquire() as conn:
        if kind.startswith("participant."):
            row = await conn.fetchrow(PARTICIPANT_BY_ID, event.get("participantId"))
            if row is None:
                return None
            # The state as of the event, not as of now: a quick join-then-leave
            # must still be told as joined, then left.
            shown = participant(row, as_of=event)
            full: Event = {"type": kind, "roomId": room_id, "participant": _json(shown)}
            if "previousStatus" in event:
                full["previousStatus"] = event["previousStatus"]
            return full
        if kind.startswith("room."):
            row = await conn.fetchrow(ROOM_BY_ID, room_id)
            if row is None:
                return None
            return {"type": kind, "roomId": room_id, "room": _json(room_detail(row))}
        if kind == "chat.message":
            row = await conn.fetchrow(MESSAGE_BY_ID, event.get("messageId"))
            if row is None:
                return None
            return {"type": kind, "roomId": room_id, "message": _json(message(row))}
    return None


def _json(model: Participant | RoomDetail | Message) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)
