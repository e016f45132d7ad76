"""The chat's busiest routes at the service's edge (shared.service_edge): a
`send_room_message` without an Idempotency-Key, and a `get_room_messages` whose query
is plain (shared.edge_head.plain_query), served by plain calls to what their aiohttp
handlers call (chat_service.routes), with the same answers."""

from __future__ import annotations

from aiohttp import web

from chat_service import store
from chat_service.models import MessagesQuery, SendMessageRequest
from chat_service.parsing import body_from, checked, username_from
from chat_service.routes import (
    get_room_messages,
    room_messages,
    send_room_message,
    store_error,
)
from chat_service.sending import SENDS_KEY
from chat_service.sends_store import Send
from shared.edge_head import EdgeRequest
from shared.service_edge import EdgeRoute


async def _send_room_message(
    app: web.Application, request: EdgeRequest, params: dict[str, str]
) -> tuple[int, bytes]:
    body = body_from(SendMessageRequest, request.body or b"")
    send = Send(body.room_id, username_from(request.identity), body.message)
    try:
        sent = await app[SENDS_KEY].submit(send)
    except store.StoreError as exc:
        raise store_error(app, exc) from None
    return 201, sent.answer


async def _get_room_messages(
    app: web.Application, request: EdgeRequest, params: dict[str, str]
) -> tuple[int, bytes]:
    assert request.query is not None  # the route reads its query: a plain one
    query = checked(MessagesQuery, request.query)  # parsing.query_of's, from the same dict
    username = username_from(request.identity)
    try:
        return 200, await room_messages(app, query, username)
    except store.StoreError as exc:
        raise store_error(app, exc) from None


EDGE_ROUTES = (
    EdgeRoute("POST", "/api/send_room_message", send_room_message, _send_room_message),
    EdgeRoute("GET", "/api/get_room_messages", get_room_messages, _get_room_messages, query=True),
)
