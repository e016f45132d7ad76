"""What one room socket is shown of the room's live events, and when its stream ends."""

from __future__ import annotations

from typing import Any

from meeting_service.models import ParticipantStatus
from shared.realtime import Ending, Event

# Who knocks and who is turned away is the host's business.
HOST_ONLY = frozenset({"participant.waiting", "participant.denied"})
REMOVED = Ending(4403, "removed")
ENDED = Ending(4410, "room ended")
LEFT = Ending(1000, "left")


class RoomView:
    """The host sees everything. A participant sees events about themselves (so a
    waiting one learns of being admitted or denied) and the room ending; the rest,
    about joined participants only, while joined. Signals reach only their
    recipient, while joined. The viewer's status follows the events about them."""

    def __init__(self, participant_id: str, is_host: bool, status: ParticipantStatus) -> None:
        self.participant_id = participant_id
        self.is_host = is_host
        self.status: str = status

    def _subject(self, event: Event) -> dict[str, Any] | None:
        subject = event.get("participant")
        return subject if isinstance(subject, dict) else None

    def close_on(self, event: Event) -> Ending | None:
        """Leaving, being removed and the room ending close the viewer's sockets
        at once: that event is the last frame they get (shared.websockets), then
        the close (1000, 4403, 4410); nothing after it reaches them."""
        kind = event.get("type")
        if kind == "room.ended":
            return ENDED
        subject = self._subject(event)
        if subject is None or subject.get("id") != self.participant_id:
            return None
        if kind == "participant.removed":
            return REMOVED
        if kind == "participant.left":
            return LEFT
        return None

    def allow(self, event: Event) -> bool:
        kind = event.get("type")
        if kind == "signal":
            return self.status == "joined" and event.get("to") == self.participant_id
        subject = self._subject(event)
        if subject is not None and subject.get("id") == self.participant_id:
            self.status = subject.get("status", self.status)
            return True
        if self.is_host:
            return True
        if self.status != "joined" or kind in HOST_ONLY:
            return False
        if subject is not None:
            # About someone else: only while they are (or were, until now) joined.
            was = event.get("previousStatus", subject.get("status"))
            return bool(was == "joined")
        return True

    def shape(self, event: Event) -> Event:
        """A signal as its recipient gets it: who sent it, and what."""
        if event.get("type") == "signal":
            return {
                "type": "signal",
                "from": event["from"],
                "kind": event["kind"],
                "data": event["data"],
            }
        return event
