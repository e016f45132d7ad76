"""The chat API over HTTP: parse, call the store, answer. Rooms are known to users by
name and id, users to rooms by username."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from chat_service import messages_store, store
from chat_service.events import RoomEvents, serve_room
from chat_service.history_cache import HISTORY_CACHE_KEY
from chat_service.models import (
    CreateRoomRequest,
    Done,
    HistoryPage,
    JoinRoomRequest,
    Members,
    MembersQuery,
    MessageSent,
    MessagesQuery,
    PublicRooms,
    RoomCreated,
    RoomIdRequest,
    RoomJoined,
    RoomPath,
    RoomSocketQuery,
    SendMessageRequest,
    UserRooms,
    UserRoomsQuery,
)
from chat_service.parsing import (
    body_of,
    create_room_body,
    members_cursor,
    members_position,
    query_of,
    room_id_of,
    user_rooms_cursor,
    user_rooms_position,
    username_of,
)
from chat_service.sending import PAGE_READS_KEY, SENDS_KEY
from chat_service.sends_store import Send
from chat_service.settings import ChatSettings
from shared.bodies import json_body, json_model
from shared.db import POOL_KEY
from shared.endpoints import endpoint
from shared.errors import ApiError
from shared.idempotency import key_of, once
from shared.passwords import PASSWORDS_KEY
from shared.realtime import REALTIME_KEY

SETTINGS_KEY = web.AppKey("settings", ChatSettings)
routes = web.RouteTableDef()

TAGS = ("chat",)
DEFAULT_MEMBERS_PAGE = 50
ROOM_NOT_FOUND = "room not found"
NOT_IN_ROOM = "you are not in this room"

STORE_ERRORS: dict[type[store.StoreError], tuple[int, str]] = {
    store.RoomNotFound: (404, ROOM_NOT_FOUND),
    store.RoomNameTaken: (400, "room already exists"),
    store.NotAMember: (403, NOT_IN_ROOM),
    store.NotTheCreator: (403, "only the room creator can delete it"),
}


def quota_message(limit: int) -> str:
    return (
        f"maximum number of public rooms reached ({limit}). Please create a private room"
        " to continue the conversation with the people you would like to"
    )


def events_of(request: web.Request) -> RoomEvents:
    return RoomEvents(request.app[REALTIME_KEY])


async def check_password(
    request: web.Request, room: store.RoomForJoin, password: str | None
) -> None:
    """Members come back freely; anyone else needs a private room's password."""
    if not room.is_private or room.is_member:
        return
    if not password:
        raise ApiError(403, "password required")
    assert room.password_hash is not None
    if not await request.app[PASSWORDS_KEY].verify(password, room.password_hash):
        raise ApiError(403, "wrong password")


@web.middleware
async def store_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What the store refuses, in the API's words."""
    try:
        return await handler(request)
    except store.StoreError as exc:
        raise store_error(request.app, exc) from None


def store_error(app: web.Application, exc: store.StoreError) -> ApiError:
    if isinstance(exc, store.PublicRoomQuotaReached):
        return ApiError(400, quota_message(app[SETTINGS_KEY].max_public_rooms))
    status, message = STORE_ERRORS[type(exc)]
    return ApiError(status, message)


@routes.post("/api/create_room")
@endpoint(
    "Create a chat room; the creator becomes its first member",
    body=CreateRoomRequest,
    responses={201: RoomCreated, 400: None, 401: None, 503: None},
    guests=False,
    tags=TAGS,
    idempotent=True,
)
async def create_room(request: web.Request) -> web.Response:
    body = await create_room_body(request)
    settings = request.app[SETTINGS_KEY]
    password_hash = None
    if body.is_private == 1:
        assert body.password is not None  # the model requires it for private rooms
        password_hash = await request.app[PASSWORDS_KEY].hash(body.password)
    async with once(request) as scope:
        if scope.replay is not None:
            return scope.replay
        room_id = await store.create_room(
            scope.conn,
            name=body.room_name,
            creator=username_of(request),
            password_hash=password_hash,
            max_public_rooms=settings.max_public_rooms,
        )
        created = RoomCreated(message=f'room "{body.room_name}" created', room_id=room_id)
        return await scope.answer(json_model(created, 201))


@routes.get("/api/rooms")
@endpoint(
    "The public rooms, with their member counts and whether the caller is in each",
    responses={200: PublicRooms, 401: None},
    guests=False,
    tags=TAGS,
)
async def list_rooms(request: web.Request) -> web.Response:
    rooms = await store.public_rooms(request.app[POOL_KEY], username_of(request))
    return json_model(PublicRooms(rooms=rooms))


@routes.get("/api/user_rooms")
@endpoint(
    "The rooms the caller is in, newest joined first",
    query=UserRoomsQuery,
    responses={200: UserRooms, 400: None, 401: None},
    guests=False,
    tags=TAGS,
)
async def list_user_rooms(request: web.Request) -> web.Response:
    query = query_of(request, UserRoomsQuery)
    rooms, more = await store.user_rooms(
        request.app[POOL_KEY],
        username_of(request),
        limit=query.limit,
        after=user_rooms_position(query.cursor),
    )
    return json_model(UserRooms(rooms=rooms, next_cursor=user_rooms_cursor(more)))


@routes.post("/api/join_room")
@endpoint(
    "Join a room by name; private rooms need their password. Joining twice is harmless",
    body=JoinRoomRequest,
    responses={200: RoomJoined, 400: None, 401: None, 403: None, 404: None, 503: None},
    guests=False,
    tags=TAGS,
)
async def join_room(request: web.Request) -> web.Response:
    body = await body_of(request, JoinRoomRequest)
    username = username_of(request)
    pool = request.app[POOL_KEY]
    room = await store.room_for_join(pool, body.name, username)
    await check_password(request, room, body.password)
    await store.add_member(pool, room.room_id, username)
    return json_model(
        RoomJoined(
            message=f'{username} joined room "{room.name}"',
            room_id=room.room_id,
            room_name=room.name,
        )
    )


@routes.post("/api/leave_room")
@endpoint(
    "Leave a room; the room stays, even when its creator leaves",
    body=RoomIdRequest,
    responses={200: Done, 400: None, 401: None, 403: None, 404: None},
    guests=False,
    tags=TAGS,
)
async def leave_room(request: web.Request) -> web.Response:
    body = await body_of(request, RoomIdRequest)
    name = await store.leave_room(
        request.app[POOL_KEY], body.room_id, username_of(request), events_of(request)
    )
    return json_model(Done(message=f'left room "{name}"'))


@routes.post("/api/delete_room")
@endpoint(
    "Delete a room with its members and messages (its creator only); frees a public slot",
    body=RoomIdRequest,
    responses={200: Done, 400: None, 401: None, 403: None, 404: None},
    guests=False,
    tags=TAGS,
)
async def delete_room(request: web.Request) -> web.Response:
    body = await body_of(request, RoomIdRequest)
    name = await store.delete_room(
        request.app[POOL_KEY], body.room_id, username_of(request), events_of(request)
    )
    return json_model(Done(message=f'room "{name}" deleted'))


@routes.get("/api/room_members/{room_id}")
@endpoint(
    "A room's members, earliest joined first; a private room's only for its members."
    " Paged when `limit` or `cursor` is given",
    query=MembersQuery,
    responses={200: Members, 400: None, 401: None, 403: None, 404: None},
    path=RoomPath,
    guests=False,
    tags=TAGS,
)
async def room_members(request: web.Request) -> web.Response:
    room_id = room_id_of(request)
    query = query_of(request, MembersQuery)
    paged = query.limit is not None or query.cursor is not None
    members, more = await store.room_members(
        request.app[POOL_KEY],
        room_id,
        username_of(request),
        limit=(query.limit or DEFAULT_MEMBERS_PAGE) if paged else None,
        after=members_position(query.cursor),
    )
    return json_model(Members(members=members, next_cursor=members_cursor(more)))


@routes.post("/api/send_room_message")
@endpoint(
    "Send a message to a room the caller is in",
    body=SendMessageRequest,
    responses={201: MessageSent, 400: None, 401: None, 403: None, 404: None},
    guests=False,
    tags=TAGS,
    idempotent=True,
)
async def send_room_message(request: web.Request) -> web.Response:
    body = await body_of(request, SendMessageRequest)
    send = Send(body.room_id, username_of(request), body.message)
    if key_of(request) is None:
        # Stored with the sends of this turn of the loop (chat_service.sending).
        sent = await request.app[SENDS_KEY].submit(send)
        return json_body(sent.answer, 201)
    async with once(request) as scope:
        if scope.replay is not None:
            return scope.replay
        sent = await store.send_message(
            scope.conn, send.room_id, send.username, send.text, events_of(request)
        )
        return await scope.answer(json_body(sent.answer, 201))


@routes.get("/api/get_room_messages")
@endpoint(
    "A page of a room's messages, newest first; page on with next_before. With `after`,"
    " the messages newer than it, oldest first; page on with next_after",
    query=MessagesQuery,
    responses={200: HistoryPage, 400: None, 401: None, 403: None, 404: None},
    guests=False,
    tags=TAGS,
)
async def get_room_messages(request: web.Request) -> web.Response:
    query = query_of(request, MessagesQuery)
    return json_body(await room_messages(request.app, query, username_of(request)))


async def room_messages(app: web.Application, query: MessagesQuery, username: str) -> bytes:
    """The page's JSON as Postgres wrote it from the models, or kept from an earlier
    read and checked still exact by Postgres (messages_store, history_cache), with the
    reads of this turn of the loop (chat_service.sending). Also the edge's
    (chat_service.edge)."""
    reads, cache = app[PAGE_READS_KEY], app[HISTORY_CACHE_KEY]
    if query.after is not None:
        return await messages_store.messages_after(
            reads, cache, query.room_id, username, limit=query.limit, after=query.after
        )
    return await messages_store.messages_page(
        reads, cache, query.room_id, username, limit=query.limit, before=query.before
    )


@routes.get("/api/rooms/{room_id}/ws")
@endpoint(
    "A WebSocket of the room's new messages, each as in the history; members only."
    " With `after`, first every message newer than it, oldest first, then live:"
    " no gap, no duplicate",
    query=RoomSocketQuery,
    responses={101: None, 400: None, 401: None, 403: None, 404: None},
    path=RoomPath,
    guests=False,
    websocket=True,
    tags=TAGS,
)
async def room_events(request: web.Request) -> web.StreamResponse:
    query = query_of(request, RoomSocketQuery)
    return await serve_room(
        request,
        request.app[REALTIME_KEY],
        room_id_of(request),
        username_of(request),
        after=query.after,
    )
