"""The parts every process's app factory starts from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from shared.auth import (
    IDENTITY_KEY,
    KeySet,
    TokenVerifier,
    load_jwks,
    token_from_request,
    unauthorized,
)
from shared.db import database_ctx, database_ready
from shared.endpoints import endpoint_of
from shared.errors import CLIENT_CLOSED_REQUEST, answer_for
from shared.forwarded import Network, resolve_client
from shared.health import READY_CHECKS_KEY, SERVICE_NAME_KEY, healthz, readyz, version
from shared.logs import STARTED_KEY, USER_ID_KEY
from shared.metrics import (
    METRICS_KEY,
    ROUTE_HEADER,
    HttpMetrics,
    MetricsListener,
    PoolCollector,
    count_websocket,
    finish,
    metrics_handler,
    metrics_server_ctx,
    route_of,
    start,
)
from shared.openapi import add_openapi_routes
from shared.request_id import add_request_id_header, assign_request_id
from shared.settings import CommonSettings, ServiceSettings
from shared.websockets import close_on_shutdown

VERIFIER_KEY = web.AppKey("verifier", TokenVerifier)
HTTP_SESSION_KEY = web.AppKey("http_session", aiohttp.ClientSession)


def request_middleware(trusted: Sequence[Network]) -> Middleware:
    """What every request goes through, in one middleware rather than four nested
    ones, in the order they nested: its id (X-Request-ID), its metrics, the JSON
    answer for whatever its handler raised (shared.errors), and the client's address
    behind trusted proxies (shared.forwarded). So the metrics count the status the
    client got, and a refused X-Forwarded-For is a 400 answered and counted like any
    other."""
    trusted = tuple(trusted)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        assign_request_id(request)
        request[USER_ID_KEY] = None
        metrics = request.app[METRICS_KEY]
        started = start(request, metrics)
        request[STARTED_KEY] = started
        status = 500
        try:
            try:
                resolve_client(request, trusted)
                response = await handler(request)
            except Exception as exc:  # CancelledError is no Exception: it goes on up
                answer = answer_for(request, exc)
                if answer is None:
                    raise
                response = answer
            status = response.status
            if metrics.announce_route and not response.prepared:
                # Where a client of ours (the gateway) reads which route this was.
                response.headers[ROUTE_HEADER] = route_of(request)
            return response
        except web.HTTPException as exc:  # not an error (a redirect): aiohttp sends it
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED_REQUEST  # the client went away first
            raise
        finally:
            finish(request, metrics, status, started)

    return middleware


async def on_response_prepare(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Every response, streamed, WebSocket and error ones included, as it starts."""
    add_request_id_header(request, response)
    count_websocket(request, response)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route needs a valid token unless its endpoint says it is public.
    Routes closed to guests say so (`guests=False`) and refuse them with 401."""
    spec = endpoint_of(request.match_info.handler)
    if spec is not None and spec.public:
        return await handler(request)
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404/405 need no token to be told
    token = token_from_request(request)
    if token is None:
        raise unauthorized()
    identity = await request.app[VERIFIER_KEY].identify(token)
    if identity.is_guest and (spec is None or not spec.guests):
        raise unauthorized()
    request[IDENTITY_KEY] = identity
    request[USER_ID_KEY] = identity.user_id
    return await handler(request)


def base_app(
    settings: CommonSettings,
    *,
    title: str,
    service: str,
    schema: str,
    migrations: Path,
    verifier: TokenVerifier | None,
    extra_middlewares: Iterable[Middleware] = (),
    pre_auth_middlewares: Iterable[Middleware] = (),
) -> web.Application:
    """Middlewares (request id, metrics, errors and client address; auth), the
    database, operational routes. `pre_auth_middlewares` answer before a token is
    asked for (CORS preflights)."""
    middlewares: list[Middleware] = [request_middleware(settings.trusted_proxies)]
    middlewares.extend(pre_auth_middlewares)
    if verifier is not None:
        middlewares.append(auth_middleware)
    middlewares.extend(extra_middlewares)
    app = web.Application(
        middlewares=middlewares,
        client_max_size=settings.max_body_bytes,
        # aiohttp's keep-alive timer also runs from a connection's start, and closes
        # it if the timer ends while a request head is still incomplete.
        handler_args={"keepalive_timeout": settings.header_timeout_s},
    )
    app[METRICS_KEY] = HttpMetrics(service)
    app[METRICS_KEY].add_collector(PoolCollector(app))
    app[SERVICE_NAME_KEY] = service
    app[READY_CHECKS_KEY] = {"database": database_ready(schema, migrations)}
    if verifier is not None:
        app[VERIFIER_KEY] = verifier
    app.on_response_prepare.append(on_response_prepare)
    close_on_shutdown(app, settings.shutdown_grace_s)
    app.cleanup_ctx.append(database_ctx(settings, schema, migrations))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/version", version)
    if settings.metrics_port is None:
        app.router.add_get("/metrics", metrics_handler)
    else:  # not on the public port
        app.cleanup_ctx.append(
            metrics_server_ctx(MetricsListener(settings.metrics_host, settings.metrics_port))
        )
    add_openapi_routes(app, title)
    return app


async def http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """One pooled client session for the process's outgoing HTTP."""
    async with aiohttp.ClientSession() as session:
        app[HTTP_SESSION_KEY] = session
        yield


def service_app(
    settings: ServiceSettings,
    *,
    title: str,
    service: str,
    migrations: Path,
    extra_middlewares: Iterable[Middleware] = (),
) -> web.Application:
    """A room service: its own schema, and tokens checked against the gateway's keys."""
    app: web.Application
    jwks = load_jwks(settings.jwks) if settings.jwks else None
    keys = KeySet(
        jwks,
        url=None if jwks is not None else settings.jwks_url,
        session=lambda: app[HTTP_SESSION_KEY],
        refresh_min_interval_s=settings.jwks_refresh_min_interval_s,
    )
    verifier = TokenVerifier(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    app = base_app(
        settings,
        title=title,
        service=service,
        schema=service,
        migrations=migrations,
        verifier=verifier,
        extra_middlewares=extra_middlewares,
    )
    app.cleanup_ctx.append(http_session_ctx)
    app[METRICS_KEY].announce_route = True
    return app
