"""What the meeting routes read from a path, and the tag they share."""

from __future__ import annotations

from aiohttp import web

from meeting_service.refusals import Refusal, Refused
from meeting_service.room_codes import normalise_code
from shared.text import storable

TAGS = ("meeting",)


def _path_id(request: web.Request, name: str, missing: Refusal) -> str:
    return path_id(request.match_info[name], missing)


def path_id(value: str, missing: Refusal) -> str:
    """A path segment that Postgres could not even store names nothing stored."""
    try:
        return storable(value)
    except ValueError:
        raise Refused(missing) from None


def room_id_of(request: web.Request) -> str:
    return _path_id(request, "room_id", Refusal.ROOM_NOT_FOUND)


def participant_id_of(request: web.Request) -> str:
    return _path_id(request, "participant_id", Refusal.PARTICIPANT_NOT_FOUND)


def code_of(request: web.Request) -> str:
    return code_from(request.match_info["code"])


def code_from(value: str) -> str:
    """`code_of` a path's `{code}` (the meeting's edge: meeting_service.edge)."""
    return normalise_code(path_id(value, Refusal.ROOM_NOT_FOUND))
