"""HTTP handlers: parse, call the store, answer. The rules live in the store."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from meeting_service import (
    messages_store,
    participants_store,
    room_settings_store,
    rooms_store,
)
from meeting_service.batches import NEW_ROOM_KEY, ROOM_BY_CODE_KEY
from meeting_service.models import (
    CreateRoomBody,
    JoinResult,
    MessagePage,
    MessagesQuery,
    MyRoomsQuery,
    Participant,
    ParticipantList,
    PublicRoom,
    Room,
    RoomDetail,
    RoomPage,
    SendMessageBody,
    UpdateSettingsBody,
)
from meeting_service.models import Message as MessageShape
from meeting_service.paths import TAGS, code_of, participant_id_of, room_id_of
from meeting_service.refusals import Refusal, Refused
from meeting_service.room_codes import CODE_GENERATOR_KEY
from shared.auth import identity_of
from shared.bodies import json_body, json_model, read_body, validate_query
from shared.cursors import decode_time_cursor, encode_time_cursor
from shared.db import POOL_KEY
from shared.endpoints import endpoint
from shared.errors import ApiError
from shared.idempotency import key_of, once
from shared.realtime import REALTIME_KEY

routes = web.RouteTableDef()

STATUS_OF: dict[Refusal, int] = {
    Refusal.ROOM_NOT_FOUND: 404,
    Refusal.PARTICIPANT_NOT_FOUND: 404,
    Refusal.MESSAGE_NOT_FOUND: 400,
    Refusal.CODES_EXHAUSTED: 400,
    Refusal.NOT_HOST_SETTINGS: 403,
    Refusal.NOT_HOST_END: 403,
    Refusal.NOT_HOST_ADMIT: 403,
    Refusal.NOT_HOST_DENY: 403,
    Refusal.NOT_HOST_REMOVE: 403,
    Refusal.HOST_NOT_REMOVABLE: 400,
    Refusal.ROOM_INACTIVE: 409,
    Refusal.ROOM_LOCKED: 423,
    Refusal.ROOM_FULL: 409,
    Refusal.CAPACITY_BELOW_JOINED: 409,
    Refusal.GUESTS_NOT_ALLOWED: 403,
    Refusal.REMOVED: 403,
    Refusal.NOT_IN_ROOM: 403,
    Refusal.CHAT_DISABLED: 403,
    Refusal.NOT_WAITING: 409,
    Refusal.NOT_HOST_MUTE: 403,
    Refusal.SCREEN_SHARE_DISABLED: 403,
}


def refusal_error(refused: Refused) -> ApiError:
    return ApiError(STATUS_OF[refused.refusal], refused.refusal.value)


@web.middleware
async def refusal_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as refused:
        raise refusal_error(refused) from None


# --- rooms -----------------------------------------------------------------------


@routes.post("/rooms")
@endpoint(
    "Create a meeting room with a unique code; the caller is its host",
    body=CreateRoomBody,
    responses={201: Room, 400: None, 401: None},
    guests=False,
    tags=TAGS,
    idempotent=True,
)
async def create_room(request: web.Request) -> web.Response:
    body = await read_body(request, CreateRoomBody)
    if key_of(request) is None:  # no transaction to hold: with this turn's others (batches.py)
        new = rooms_store.NewRoom(identity_of(request), body)
        return json_body(await request.app[NEW_ROOM_KEY].submit(new), 201)
    async with once(request) as scope:
        if scope.replay is not None:
            return scope.replay
        room = await rooms_store.create_room(
            scope.conn, identity_of(request), body, request.app[CODE_GENERATOR_KEY]
        )
        return await scope.answer(json_body(room, 201))


@routes.get("/rooms")
@endpoint(
    "Rooms the caller hosts or has joined, newest first",
    query=MyRoomsQuery,
    responses={200: RoomPage, 400: None, 401: None},
    tags=TAGS,
)
async def my_rooms(request: web.Request) -> web.Response:
    query = validate_query(MyRoomsQuery, request)
    after = decode_time_cursor(query.cursor, str) if query.cursor else None
    rooms, last = await rooms_store.my_rooms(
        request.app[POOL_KEY], identity_of(request).user_id, query.limit, after
    )
    next_cursor = encode_time_cursor(*last) if last else None
    return json_model(RoomPage(rooms=rooms, next_cursor=next_cursor))


@routes.get("/rooms/code/{code}")
@endpoint(
    "Look a room up by its code, before joining; no token needed",
    responses={200: PublicRoom, 404: None},
    public=True,
    tags=TAGS,
)
async def room_by_code(request: web.Request) -> web.Response:
    code = code_of(request)
    return json_body(await request.app[ROOM_BY_CODE_KEY].submit(code))


@routes.post("/rooms/code/{code}/join")
@endpoint(
    "Join a room by its code (users and guests); waits for the host when the waiting room is on",
    responses={200: JoinResult, 401: None, 403: None, 404: None, 409: None, 423: None},
    tags=TAGS,
)
async def join_room(request: web.Request) -> web.Response:
    code = code_of(request)
    joined, room = await participants_store.join_room(
        request.app[POOL_KEY], request.app[REALTIME_KEY], identity_of(request), code
    )
    return json_model(JoinResult(participant=joined, room=room))


@routes.get("/rooms/{room_id}")
@endpoint(
    "A room by id",
    responses={200: RoomDetail, 401: None, 404: None},
    tags=TAGS,
)
async def get_room(request: web.Request) -> web.Response:
    return json_model(await rooms_store.get_room(request.app[POOL_KEY], room_id_of(request)))


@routes.patch("/rooms/{room_id}/settings")
@endpoint(
    "Change the room's settings, name and lock (host only)",
    body=UpdateSettingsBody,
    responses={200: RoomDetail, 400: None, 401: None, 403: None, 404: None, 409: None},
    tags=TAGS,
)
async def update_settings(request: web.Request) -> web.Response:
    body = await read_body(request, UpdateSettingsBody)
    room = await room_settings_store.update_settings(
        request.app[POOL_KEY],
        request.app[REALTIME_KEY],
        identity_of(request),
        room_id_of(request),
        body.changes(),
    )
    return json_model(room)


@routes.post("/rooms/{room_id}/end")
@endpoint(
    "End the meeting for everyone (host only)",
    responses={200: RoomDetail, 401: None, 403: None, 404: None},
    tags=TAGS,
)
async def end_room(request: web.Request) -> web.Response:
    room = await room_settings_store.end_room(
        request.app[POOL_KEY], request.app[REALTIME_KEY], identity_of(request), room_id_of(request)
    )
    return json_model(room)


# --- participants ------------------------------------------------------------------


@routes.post("/rooms/{room_id}/leave")
@endpoint(
    "Leave the room, or stop waiting to be admitted",
    responses={200: Participant, 401: None, 404: None},
    tags=TAGS,
)
async def leave_room(request: web.Request) -> web.Response:
    left = await participants_store.leave_room(
        request.app[POOL_KEY], request.app[REALTIME_KEY], identity_of(request), room_id_of(request)
    )
    return json_model(left)


@routes.get("/rooms/{room_id}/participants")
@endpoint(
    "Who is in the room; the host also sees who is waiting",
    responses={200: ParticipantList, 401: None, 403: None, 404: None},
    tags=TAGS,
)
async def list_participants(request: web.Request) -> web.Response:
    found = await participants_store.list_participants(
        request.app[POOL_KEY], identity_of(request), room_id_of(request)
    )
    return json_model(ParticipantList(participants=found))


async def _decide(request: web.Request, *, admit: bool) -> web.Response:
    decided = await participants_store.decide_waiting(
        request.app[POOL_KEY],
        request.app[REALTIME_KEY],
        identity_of(request),
        room_id_of(request),
        participant_id_of(request),
        admit=admit,
    )
    return json_model(decided)


@routes.post("/rooms/{room_id}/participants/{participant_id}/admit")
@endpoint(
    "Let someone in from the waiting room (host only; capacity applies)",
    responses={200: Participant, 401: None, 403: None, 404: None, 409: None},
    tags=TAGS,
)
async def admit_participant(request: web.Request) -> web.Response:
    return await _decide(request, admit=True)


@routes.post("/rooms/{room_id}/participants/{participant_id}/deny")
@endpoint(
    "Turn someone in the waiting room away (host only)",
    responses={200: Participant, 401: None, 403: None, 404: None, 409: None},
    tags=TAGS,
)
async def deny_participant(request: web.Request) -> web.Response:
    return await _decide(request, admit=False)


@routes.delete("/rooms/{room_id}/participants/{participant_id}")
@endpoint(
    "Remove a participant; they cannot join again (host only)",
    responses={204: None, 400: None, 401: None, 403: None, 404: None},
    tags=TAGS,
)
async def remove_participant(request: web.Request) -> web.Response:
    await participants_store.remove_participant(
        request.app[POOL_KEY],
        request.app[REALTIME_KEY],
        identity_of(request),
        room_id_of(request),
        participant_id_of(request),
    )
    return web.Response(status=204)


# --- in-meeting chat ------------------------------------------------------------------


@routes.get("/rooms/{room_id}/messages")
@endpoint(
    "The room's chat, newest first",
    query=MessagesQuery,
    responses={200: MessagePage, 400: None, 401: None, 403: None, 404: None},
    tags=TAGS,
)
async def list_messages(request: web.Request) -> web.Response:
    query = validate_query(MessagesQuery, request)
    messages, next_before = await messages_store.list_messages(
        request.app[POOL_KEY], identity_of(request), room_id_of(request), query.limit, query.before
    )
    return json_model(MessagePage(messages=messages, next_before=next_before))


@routes.post("/rooms/{room_id}/messages")
@endpoint(
    "Send a chat message to the room",
    body=SendMessageBody,
    responses={201: MessageShape, 400: None, 401: None, 403: None, 404: None, 409: None},
    tags=TAGS,
    idempotent=True,
)
async def send_message(request: web.Request) -> web.Response:
    body = await read_body(request, SendMessageBody)
    async with once(request) as scope:
        if scope.replay is not None:
            return scope.replay
        sent = await messages_store.send_message(
            scope.conn,
            request.app[REALTIME_KEY],
            identity_of(request),
            room_id_of(request),
            body.content,
        )
        return await scope.answer(json_model(sent, status=201))
