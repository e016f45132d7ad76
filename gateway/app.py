from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.api_docs import MergedDocs
from gateway.cors import preflight_middleware, setup_cors
from gateway.edge import edge_front
from gateway.edge_request import ROUTES_KEY, Route, Routes
from gateway.identity import ISSUER_KEY, JWKS_KEY, SETTINGS_KEY, dummy_hash_ctx, routes
from gateway.keys import TokenIssuer, key_ring_of
from gateway.observability import GATEWAY_METRICS_KEY, GatewayMetrics
from gateway.proxy import BODY_LIMIT_KEY, POOLS_KEY, proxy_handler
from gateway.purge import purge_task_ctx
from gateway.settings import GatewaySettings
from gateway.upstream import SESSION_KEY, Upstream
from gateway.upstream_client import UpstreamPool
from gateway.web_client import add_web_client
from gateway.websocket_proxy import WS_SESSION_KEY, refused_upgrades
from shared.app import base_app
from shared.auth import KeySet, TokenVerifier
from shared.health import UPSTREAM_CHECKS_KEY, ReadyCheck
from shared.openapi import OPENAPI_EXTEND_KEY
from shared.passwords import passwords_ctx
from shared.server import FRONT_KEY

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: GatewaySettings | None = None) -> web.Application:
    settings = settings or GatewaySettings()
    keys = key_ring_of(settings)
    issuer = TokenIssuer(keys.current, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    verifier = TokenVerifier(
        KeySet(keys.jwks()),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    app = base_app(
        settings,
        title="Rooms gateway",
        service="gateway",
        schema="gateway",
        migrations=MIGRATIONS,
        verifier=verifier,
        # Preflights are the gateway's to answer only for the origins it lists; with
        # none, an OPTIONS request is routed like any other, so no middleware is needed.
        pre_auth_middlewares=[preflight_middleware] if settings.cors_allowed_origins else [],
    )
    setup_cors(app, settings.cors_allowed_origins)
    app[SETTINGS_KEY] = settings
    app[GATEWAY_METRICS_KEY] = GatewayMetrics(app)
    app[ISSUER_KEY] = issuer
    app[JWKS_KEY] = keys.jwks()
    app[BODY_LIMIT_KEY] = settings.max_body_bytes
    app.cleanup_ctx.append(passwords_ctx(settings))
    app.cleanup_ctx.append(dummy_hash_ctx)
    app.cleanup_ctx.append(purge_task_ctx)
    chat = Upstream("chat service", settings.chat_url.rstrip("/"), "chat")
    meeting = Upstream("meeting service", settings.meeting_url.rstrip("/"), "meeting")
    app.cleanup_ctx.append(_upstream_session_ctx(settings, (chat, meeting)))
    # Reported by /readyz?upstreams; the gateway's own readiness is its database's.
    app[UPSTREAM_CHECKS_KEY] = {u.service: _upstream_ready(u) for u in (chat, meeting)}
    app[OPENAPI_EXTEND_KEY] = MergedDocs({"Chat": chat, "Meeting": meeting})
    app.add_routes(routes)
    add_web_client(app)
    # The one meeting route that needs no token: looking a room up by its code.
    code = app.router.add_get("/rooms/code/{code}", proxy_handler(meeting, public=True))
    api = app.router.add_route("*", "/api/{tail:.*}", proxy_handler(chat))
    rooms = app.router.add_route("*", "/rooms", proxy_handler(meeting))
    rooms_tail = app.router.add_route("*", "/rooms/{tail:.*}", proxy_handler(meeting))
    # The public port's connections start at the edge, which relays these routes'
    # plain requests itself and hands the rest to this app (gateway.edge).
    app[ROUTES_KEY] = Routes(
        code=Route(meeting, code.resource.canonical, public=True),  # type: ignore[union-attr]
        api=Route(chat, api.resource.canonical),  # type: ignore[union-attr]
        rooms=Route(meeting, rooms.resource.canonical),  # type: ignore[union-attr]
        rooms_tail=Route(meeting, rooms_tail.resource.canonical),  # type: ignore[union-attr]
    )
    app[FRONT_KEY] = edge_front(app)
    return app


def _upstream_session_ctx(
    settings: GatewaySettings, upstreams: tuple[Upstream, ...]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # The HTTP relay's pools; aiohttp's sessions for the rest (health checks,
        # API documents, WebSockets), which are not on the hot path.
        pools = {
            upstream.service: UpstreamPool(
                upstream.url,
                size=settings.upstream_pool_size,
                connect_timeout=settings.upstream_connect_timeout_s,
                read_timeout=settings.upstream_timeout_s,
                pool_wait=settings.upstream_pool_wait_s,
            )
            for upstream in upstreams
        }
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), trace_configs=[refused_upgrades()]
            ) as websockets,
        ):
            app[SESSION_KEY] = session
            app[POOLS_KEY] = pools
            app[WS_SESSION_KEY] = websockets
            try:
                yield
            finally:
                for pool in pools.values():
                    await pool.close()

    return ctx


def _upstream_ready(upstream: Upstream) -> ReadyCheck:
    async def check(app: web.Application) -> bool:
        timeout = aiohttp.ClientTimeout(total=2)
        async with app[SESSION_KEY].get(f"{upstream.url}/healthz", timeout=timeout) as response:
            return response.status == 200

    return check
