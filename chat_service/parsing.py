"""Requests into models, with the chat API's one 400 message (the create_room document's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from chat_service.models import CreateRoomRequest, RoomPath
from shared.auth import Identity, identity_of, unauthorized
from shared.bodies import json_object, parsed
from shared.cursors import decode_time_cursor, encode_time_cursor
from shared.errors import ApiError

M = TypeVar("M", bound=BaseModel)

INVALID_FIELDS = "invalid fields received"
ROOM_NAME_NOT_STRING = "room_name must be a string"


def checked(model: type[M], data: Any) -> M:
    """The document's 400 is the bare `{"error": "invalid fields received"}`; the chat
    API keeps that exact body for every invalid field rather than adding details."""
    try:
        return model.model_validate(data)
    except ValidationError:
        raise ApiError(400, INVALID_FIELDS) from None


async def json_object_of(request: web.Request) -> dict[str, Any]:
    return json_object(await request.read(), invalid=INVALID_FIELDS)


async def body_of(request: web.Request, model: type[M]) -> M:
    return body_from(model, await request.read())


def body_from(model: type[M], raw: bytes) -> M:
    """`body_of` bytes already read (the chat's edge: chat_service.edge)."""
    body = parsed(model, raw)  # a valid body in one call; anything else told as before
    if body is not None:
        return body
    return checked(model, json_object(raw, invalid=INVALID_FIELDS))


def query_of(request: web.Request, model: type[M]) -> M:
    return checked(model, dict(request.query))


def room_id_of(request: web.Request) -> int:
    return checked(RoomPath, dict(request.match_info)).room_id


async def create_room_body(request: web.Request) -> CreateRoomRequest:
    data = await json_object_of(request)
    name: Any = data.get("room_name")
    # The document's own message for a room_name of the wrong type; a null one is missing.
    if name is not None and not isinstance(name, str):
        raise ApiError(400, ROOM_NAME_NOT_STRING)
    return checked(CreateRoomRequest, data)


def username_of(request: web.Request) -> str:
    return username_from(identity_of(request))


def username_from(identity: Identity | None) -> str:
    username = identity.username if identity is not None else None
    if not username:
        raise unauthorized()  # chat rooms know users by username; a token without one is no use
    return username


def user_rooms_cursor(position: tuple[datetime, int] | None) -> str | None:
    return encode_time_cursor(*position) if position is not None else None


def user_rooms_position(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    return decode_time_cursor(cursor, int, message=INVALID_FIELDS)


def members_cursor(position: tuple[datetime, str] | None) -> str | None:
    return encode_time_cursor(*position) if position is not None else None


def members_position(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    return decode_time_cursor(cursor, str, message=INVALID_FIELDS)
