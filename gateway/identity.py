"""/auth/...: register, login, refresh, logout, me, guest; and the public keys."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway import login_limits, tokens_store, users_store
from gateway.keys import TokenIssuer
from gateway.login_limits import Limit
from gateway.models import (
    GuestIn,
    GuestTokenOut,
    Jwks,
    LoginIn,
    ProfileIn,
    RefreshIn,
    RegisterIn,
    SessionOut,
    User,
    UserOut,
)
from gateway.observability import login_refused
from gateway.settings import GatewaySettings
from shared.auth import identity_of, unauthorized
from shared.bodies import json_model, read_json_object, validate
from shared.db import POOL_KEY, Conn
from shared.endpoints import endpoint
from shared.errors import ApiError
from shared.forwarded import client_address
from shared.ids import new_id
from shared.logs import USER_ID_KEY
from shared.passwords import PASSWORDS_KEY, PasswordsBusy

SETTINGS_KEY = web.AppKey("gateway_settings", GatewaySettings)
ISSUER_KEY = web.AppKey("token_issuer", TokenIssuer)
# The signing key and the one it replaced (gateway.keys.KeyRing), as published.
JWKS_KEY = web.AppKey("jwks", dict[str, Any])
# Checked when the username is unknown, so that both failures take as long.
DUMMY_HASH_KEY = web.AppKey("dummy_password_hash", str)

INVALID_CREDENTIALS = "invalid credentials"
routes = web.RouteTableDef()
TAGS = ("identity",)


async def _new_session(request: web.Request, conn: Conn, user: User) -> SessionOut:
    """A refresh token stored on `conn`, and the access token that goes with it."""
    ttl_s = request.app[SETTINGS_KEY].refresh_token_ttl_s
    refresh = await tokens_store.issue_refresh_token(conn, user.id, ttl_s)
    return _session_body(request, user, refresh)


def _session_body(request: web.Request, user: User, refresh_token: str) -> SessionOut:
    settings = request.app[SETTINGS_KEY]
    access = request.app[ISSUER_KEY].access_token(
        subject=user.id,
        username=user.username,
        name=user.display_name,
        picture=user.avatar_url,
        role="user",
        ttl_s=settings.access_token_ttl_s,
    )
    return SessionOut(
        user=user.public(),
        access_token=access,
        expires_in=settings.access_token_ttl_s,
        refresh_token=refresh_token,
    )


def too_many(message: str, retry_after: int) -> ApiError:
    return ApiError(429, message, headers={"Retry-After": str(retry_after)})


async def _limit_per_address(
    request: web.Request, action: str, max_attempts: int, window_s: int, refusal: str
) -> None:
    """Every attempt at `action`, successful or not, counts against the client's address."""
    limit = Limit(f"{action}:addr:{client_address(request)}", max_attempts)
    async with request.app[POOL_KEY].acquire() as conn:
        _, retry_after = await login_limits.admit(conn, [limit], window_s)
    if retry_after is not None:
        raise too_many(refusal, retry_after)


@routes.post("/auth/register")
@endpoint(
    "Create an account and log in",
    body=RegisterIn,
    responses={201: SessionOut, 400: None, 409: None, 429: None, 503: None},
    public=True,
    tags=TAGS,
)
async def register(request: web.Request) -> web.Response:
    body = validate(RegisterIn, await read_json_object(request))
    settings = request.app[SETTINGS_KEY]
    passwords = request.app[PASSWORDS_KEY]
    passwords.refuse_when_full()  # before the registration is counted
    await _limit_per_address(
        request,
        "register",
        settings.register_max_per_address,
        settings.register_window_s,
        "too many registrations",
    )
    password_hash = await passwords.hash(body.password)
    # The account and its first session commit together, or neither does.
    async with request.app[POOL_KEY].acquire() as conn, conn.transaction():
        user = await users_store.register(conn, body, password_hash)
        session = await _new_session(request, conn, user)
    return json_model(session, 201)


@routes.post("/auth/login")
@endpoint(
    "Log in with a username (or email) and password",
    body=LoginIn,
    responses={200: SessionOut, 400: None, 401: None, 429: None, 503: None},
    public=True,
    tags=TAGS,
)
async def login(request: web.Request) -> web.Response:
    body = validate(LoginIn, await read_json_object(request))
    login_name = body.username if body.username is not None else body.email
    if not login_name:
        raise ApiError(
            400,
            "username or email is required",
            details=[{"field": "username", "message": "username or email is required"}],
        )
    settings = request.app[SETTINGS_KEY]
    pool = request.app[POOL_KEY]
    passwords = request.app[PASSWORDS_KEY]
    passwords.refuse_when_full()  # before anything is recorded
    async with pool.acquire() as conn:
        user = await users_store.find_for_login(conn, username=body.username, email=body.email)
        # One budget per account, whichever of its names is typed; an unknown name
        # has its own, so that both answer alike.
        user_key = f"account:{user.id}" if user else f"name:{login_name.lower()}"
        client = client_address(request)
        limits = [
            Limit(user_key, settings.login_max_failures_per_user),
            Limit(f"addr:{client}", settings.login_max_failures_per_address),
        ]
        attempt, retry_after = await login_limits.admit(conn, limits, settings.login_window_s)
        if retry_after is not None:
            login_refused(
                request,
                login_name=login_name,
                client=client,
                reason="limited",
                user_id=user.id if user else None,
                retry_after=retry_after,
            )
            raise too_many("too many login attempts", retry_after)
    stored_hash = user.password_hash if user else request.app[DUMMY_HASH_KEY]
    try:
        matches = await passwords.verify(body.password, stored_hash)
    except PasswordsBusy:
        # Filled up meanwhile: no password was checked, so no attempt counts.
        async with pool.acquire() as conn:
            await login_limits.forget(conn, attempt)
        raise
    if not matches or user is None:
        login_refused(
            request,
            login_name=login_name,
            client=client,
            reason="credentials",
            user_id=user.id if user else None,
        )
        raise ApiError(401, INVALID_CREDENTIALS)
    request[USER_ID_KEY] = user.id  # on the request's log line
    async with pool.acquire() as conn:
        await login_limits.clear(conn, user_key)
        await login_limits.forget(conn, attempt)
        session = await _new_session(request, conn, user)
    return json_model(session)


@routes.post("/auth/refresh")
@endpoint(
    "Trade a refresh token for a new token pair (the old one stops working)",
    body=RefreshIn,
    responses={200: SessionOut, 400: None, 401: None},
    public=True,
    tags=TAGS,
)
async def refresh(request: web.Request) -> web.Response:
    body = validate(RefreshIn, await read_json_object(request))
    settings = request.app[SETTINGS_KEY]
    async with request.app[POOL_KEY].acquire() as conn:
        async with conn.transaction():
            outcome = await tokens_store.rotate(
                conn, body.refresh_token, settings.refresh_token_ttl_s
            )
        user = await users_store.get_user(conn, outcome[0]) if isinstance(outcome, tuple) else None
    if not isinstance(outcome, tuple) or user is None:
        raise unauthorized()
    return json_model(_session_body(request, user, outcome[1]))


@routes.post("/auth/logout")
@endpoint(
    "Revoke a refresh token (the session it belongs to)",
    body=RefreshIn,
    responses={204: None, 400: None, 401: None},
    public=True,
    tags=TAGS,
)
async def logout(request: web.Request) -> web.Response:
    body = validate(RefreshIn, await read_json_object(request))
    async with request.app[POOL_KEY].acquire() as conn, conn.transaction():
        revoked = await tokens_store.revoke(conn, body.refresh_token)
    if not revoked:
        raise unauthorized()
    return web.Response(status=204)


async def _current_user(request: web.Request) -> User:
    identity = identity_of(request)
    async with request.app[POOL_KEY].acquire() as conn:
        user = await users_store.get_user(conn, identity.user_id)
    if user is None:
        raise unauthorized()
    return user


@routes.get("/auth/me")
@endpoint("The caller's account", responses={200: UserOut, 401: None}, guests=False, tags=TAGS)
async def me(request: web.Request) -> web.Response:
    return json_model((await _current_user(request)).public())


@routes.patch("/auth/me")
@endpoint(
    "Change the display name or avatar; tokens issued afterwards carry them",
    body=ProfileIn,
    responses={200: UserOut, 400: None, 401: None},
    guests=False,
    tags=TAGS,
)
async def update_me(request: web.Request) -> web.Response:
    body = validate(ProfileIn, await read_json_object(request))
    changes = body.model_dump(include=body.model_fields_set)
    if "display_name" in changes and changes["display_name"] is None:
        raise ApiError(
            400,
            "displayName: may not be null",
            details=[{"field": "displayName", "message": "may not be null"}],
        )
    identity = identity_of(request)
    async with request.app[POOL_KEY].acquire() as conn:
        user = await users_store.update_profile(conn, identity.user_id, changes)
    if user is None:
        raise unauthorized()
    return json_model(user.public())


@routes.post("/auth/guest")
@endpoint(
    "A guest identity, for meeting rooms that allow guests",
    body=GuestIn,
    responses={201: GuestTokenOut, 400: None, 429: None},
    public=True,
    tags=TAGS,
)
async def guest(request: web.Request) -> web.Response:
    body = validate(GuestIn, await read_json_object(request))
    settings = request.app[SETTINGS_KEY]
    await _limit_per_address(
        request,
        "guest",
        settings.guest_max_per_address,
        settings.guest_window_s,
        "too many guest tokens",
    )
    token = request.app[ISSUER_KEY].access_token(
        subject=f"guest_{new_id()}",
        username=None,
        name=body.display_name,
        picture=None,
        role="guest",
        ttl_s=settings.guest_token_ttl_s,
    )
    return json_model(GuestTokenOut(access_token=token, expires_in=settings.guest_token_ttl_s), 201)


@routes.get("/.well-known/jwks.json")
@endpoint(
    "The public keys that verify access tokens",
    responses={200: Jwks},
    public=True,
    tags=TAGS,
    database=False,
)
async def jwks(request: web.Request) -> web.Response:
    response = web.json_response(request.app[JWKS_KEY])
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


async def dummy_hash_ctx(app: web.Application) -> AsyncIterator[None]:
    app[DUMMY_HASH_KEY] = await app[PASSWORDS_KEY].hash(secrets.token_urlsafe(16))
    yield
