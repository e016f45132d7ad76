"""X-Request-ID: the client's when it is sane, a new one otherwise, on every response."""

from __future__ import annotations

import itertools
import re
import secrets

from aiohttp import web

from shared.logs import request_id_var

HEADER = "X-Request-ID"
REQUEST_ID_KEY = web.RequestKey("request_id", str)
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# A new id: this process's random prefix and a counter. Unique across processes and
# restarts (64 random bits each) at a fraction of uuid4's cost; an id is no secret.
_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):016x}"


def request_id_of(request: web.Request) -> str:
    request_id: str = request.get(REQUEST_ID_KEY, "")
    return request_id


def request_id_from(given: str | None) -> str:
    """The client's id (its X-Request-ID) when it is sane, a new one otherwise."""
    return given if given is not None and _SANE.match(given) else new_request_id()


def assign_request_id(request: web.Request) -> str:
    """`request_id_from` the request's header: on the request, and in the context
    its log lines are written from."""
    request_id = request_id_from(request.headers.get(HEADER))
    request[REQUEST_ID_KEY] = request_id
    request_id_var.set(request_id)
    return request_id


def add_request_id_header(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Part of the app's on_response_prepare: covers streamed, WebSocket and error
    responses alike."""
    request_id = request.get(REQUEST_ID_KEY)
    if request_id:
        response.headers[HEADER] = request_id
