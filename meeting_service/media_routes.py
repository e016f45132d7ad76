"""HTTP handlers of the media layer: the two-way room socket, ICE servers, the host's mute."""

from __future__ import annotations

from aiohttp import web

from meeting_service import media_store, participants_store
from meeting_service.ice import ice_servers
from meeting_service.models import IceServers, Participant
from meeting_service.paths import TAGS, participant_id_of, room_id_of
from meeting_service.settings import SETTINGS_KEY
from meeting_service.socket import serve_room_socket
from shared.auth import identity_of
from shared.bodies import json_model
from shared.db import POOL_KEY
from shared.endpoints import endpoint
from shared.realtime import REALTIME_KEY

media_routes = web.RouteTableDef()


@media_routes.post("/rooms/{room_id}/participants/{participant_id}/mute")
@endpoint(
    "Turn a participant's microphone off (host only); they may turn it on again",
    responses={200: Participant, 401: None, 403: None, 404: None},
    tags=TAGS,
)
async def mute_participant(request: web.Request) -> web.Response:
    muted = await media_store.mute(
        request.app[POOL_KEY],
        request.app[REALTIME_KEY],
        identity_of(request).user_id,
        room_id_of(request),
        participant_id_of(request),
    )
    return json_model(muted)


@media_routes.get("/rooms/{room_id}/ice-servers")
@endpoint(
    "STUN and TURN servers for a joined participant, with time-limited TURN credentials",
    responses={200: IceServers, 401: None, 403: None, 404: None},
    tags=TAGS,
)
async def get_ice_servers(request: web.Request) -> web.Response:
    me = await participants_store.joined_participant(
        request.app[POOL_KEY], identity_of(request), room_id_of(request)
    )
    return json_model(ice_servers(request.app[SETTINGS_KEY], me.id))


@media_routes.get("/rooms/{room_id}/ws")
@endpoint(
    "The room's live events (participants, media, settings, lock, end, chat) and the"
    " WebRTC signaling between participants, as JSON frames both ways",
    responses={101: None, 401: None, 403: None, 404: None},
    websocket=True,
    tags=TAGS,
)
async def room_socket(request: web.Request) -> web.StreamResponse:
    return await serve_room_socket(request, room_id_of(request))
