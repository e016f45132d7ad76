"""Which live room events each WebSocket client is shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meeting_service.participants_store import Viewer

# Who knocks and who is turned away is the host's business.
HOST_ONLY = frozenset({"participant.waiting", "participant.denied"})


def event_filter(viewer: Viewer) -> Callable[[dict[str, Any]], bool]:
    """The host sees everything. A participant sees events about themselves (so a
    waiting one learns of being admitted or denied) and the room ending; the rest
    only while joined. The viewer's status follows the events about them."""
    status = viewer.status

    def allow(event: dict[str, Any]) -> bool:
        nonlocal status
        if viewer.is_host:
            return True
        kind = event.get("type")
        subject = event.get("participant")
        if isinstance(subject, dict) and subject.get("userId") == viewer.user_id:
            status = subject.get("status", status)
            return True
        if kind == "room.ended":
            return True
        if kind in HOST_ONLY or event.get("previousStatus") == "waiting":
            return False
        return status == "joined"

    return allow
