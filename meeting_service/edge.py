"""The meeting's busiest routes at the service's edge (shared.service_edge): a
create without an Idempotency-Key and a lookup by code, served by plain calls to
what their aiohttp handlers call (meeting_service.routes), with the same answers."""

from __future__ import annotations

from aiohttp import web

from meeting_service import rooms_store
from meeting_service.batches import NEW_ROOM_KEY, ROOM_BY_CODE_KEY
from meeting_service.models import CreateRoomBody
from meeting_service.paths import code_from
from meeting_service.refusals import Refused
from meeting_service.routes import create_room, refusal_error, room_by_code
from shared.auth import unauthorized
from shared.bodies import body_of
from shared.edge_head import EdgeRequest
from shared.service_edge import EdgeRoute


async def _create_room(
    app: web.Application, request: EdgeRequest, params: dict[str, str]
) -> tuple[int, bytes]:
    body = body_of(CreateRoomBody, request.body or b"")
    if request.identity is None:
        raise unauthorized()
    try:
        return 201, await app[NEW_ROOM_KEY].submit(rooms_store.NewRoom(request.identity, body))
    except Refused as refused:
        raise refusal_error(refused) from None


async def _room_by_code(
    app: web.Application, request: EdgeRequest, params: dict[str, str]
) -> tuple[int, bytes]:
    try:
        return 200, await app[ROOM_BY_CODE_KEY].submit(code_from(params["code"]))
    except Refused as refused:
        raise refusal_error(refused) from None


EDGE_ROUTES = (
    EdgeRoute("POST", "/rooms", create_room, _create_room),
    EdgeRoute("GET", "/rooms/code/{code}", room_by_code, _room_by_code),
)
