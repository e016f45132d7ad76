"""CORS at the gateway: pages on the origins an operator lists may call the API.

Tokens travel in Authorization, never in cookies, so no credentials are allowed. A
preflight is answered here, before authentication and routing: a browser sends it
without the token. aiohttp-cors (the aiohttp project's own) works per route and
sees no releases; the gateway's one rule fits in a middleware and a response hook.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from shared.errors import error_response

ORIGINS_KEY = web.AppKey("cors_origins", frozenset)
ANY = "*"

METHODS = "GET, POST, PUT, PATCH, DELETE"
# Beyond the CORS-safelisted ones: the token, JSON bodies, and the two the API reads.
HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
EXPOSED = "X-Request-ID, Retry-After, Idempotent-Replayed"
MAX_AGE = "600"
NOT_ALLOWED = "origin not allowed"


def _allowed(app: web.Application, origin: str | None) -> bool:
    origins = app[ORIGINS_KEY]
    return origin is not None and (ANY in origins or origin.lower() in origins)


def _vary(response: web.StreamResponse, *names: str) -> None:
    present = [v.strip() for v in response.headers.get(hdrs.VARY, "").split(",") if v.strip()]
    lowered = {v.lower() for v in present}
    present += [name for name in names if name.lower() not in lowered]
    response.headers[hdrs.VARY] = ", ".join(present)


@web.middleware
async def preflight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """OPTIONS with Origin and Access-Control-Request-Method is the browser asking,
    not the API being called: 204 with what may be sent, for listed origins only."""
    origin = request.headers.get(hdrs.ORIGIN)
    if (
        request.method != hdrs.METH_OPTIONS
        or origin is None
        or hdrs.ACCESS_CONTROL_REQUEST_METHOD not in request.headers
        or not request.app[ORIGINS_KEY]
    ):
        return await handler(request)
    if not _allowed(request.app, origin):
        response = error_response(403, NOT_ALLOWED)
    else:
        response = web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: METHODS,
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: HEADERS,
                hdrs.ACCESS_CONTROL_MAX_AGE: MAX_AGE,
            },
        )
    _vary(response, hdrs.ACCESS_CONTROL_REQUEST_METHOD, hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
    return response


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, errors and relayed ones included, lets a listed
    origin read it and the headers a client needs."""
    for name in (hdrs.ACCESS_CONTROL_ALLOW_ORIGIN, hdrs.ACCESS_CONTROL_EXPOSE_HEADERS):
        response.headers.popall(name, None)  # the gateway's rule, never a service's
    if not request.app[ORIGINS_KEY]:
        return
    _vary(response, hdrs.ORIGIN)
    origin = request.headers.get(hdrs.ORIGIN)
    if not _allowed(request.app, origin):
        return
    assert origin is not None
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    if request.method != hdrs.METH_OPTIONS:
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSED


def setup_cors(app: web.Application, origins: tuple[str, ...]) -> None:
    app[ORIGINS_KEY] = frozenset(origin.lower() for origin in origins)
    # With no origin listed no answer gets CORS headers, so there is nothing to add:
    # the relay drops a service's own (gateway.upstream.answer_headers), and the
    # gateway's answers have none.
    if origins:
        app.on_response_prepare.append(add_cors_headers)
