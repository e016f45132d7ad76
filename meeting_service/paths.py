"""What the meeting routes read from a path, and the tag they share."""

from __future__ import annotations

from aiohttp import web

from meeting_service.refusals import Refusal, Refused
from meeting_service.room_codes import normalise_code
from shared.text import storable

TAGS = ("meeting",)


def _path_id(request: web.Request, name: str, missing: Refusal) -> str:
    """A path segment that Postgres could not even store names nothing stored."""
    value = request.match_info[name]
    try:
        return storable(value)
    except ValueError:
        raise Refused(missing) from None


def room_id_of(request: web.Request) -> str:
    return _path_id(request, "room_id", Refusal.ROOM_NOT_FOUND)


def participant_id_of(request: web.Request) -> str:
    return _path_id(request, "participant_id", Refusal.PARTICIPANT_NOT_FOUND)


def code_of(request: web.Request) -> str:
    return normalise_code(_path_id(request, "code", Refusal.ROOM_NOT_FOUND))
