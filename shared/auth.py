"""Access tokens: extraction from a request, and verification against the gateway's public keys."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

import aiohttp
import jwt
from aiohttp import web
from pydantic import BaseModel, ValidationError

from shared.errors import UNAUTHORIZED, ApiError, Unavailable

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
Role = Literal["user", "guest"]


class Identity(BaseModel):
    """Who a verified token speaks for."""

    user_id: str
    username: str | None
    display_name: str
    avatar_url: str | None
    role: Role

    @property
    def is_guest(self) -> bool:
        return self.role == "guest"


IDENTITY_KEY = web.RequestKey("identity", Identity)


def token_from_request(request: web.Request) -> str | None:
    """`Authorization: <token>` or `Authorization: Bearer <token>`; on a WebSocket
    upgrade also `?access_token=`, since browsers cannot set headers there."""
    header = request.headers.get("Authorization", "").strip()
    if header:
        return token_from_header(header)
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("access_token") or None
    return None


def token_from_header(header: str) -> str | None:
    """The token in an Authorization header's (stripped, non-empty) value."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    return header if " " not in header else None


def unauthorized() -> ApiError:
    return ApiError(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


def identity_of(request: web.Request) -> Identity:
    """Who is calling; a 401 on a route the auth middleware let through without a token."""
    identity: Identity | None = request.get(IDENTITY_KEY)
    if identity is None:
        raise unauthorized()
    return identity


class KeySet:
    """Public keys by key id: from an inline JWKS, or fetched from a URL and refreshed
    when a token names a key id not seen yet (the gateway rotated its key)."""

    def __init__(
        self,
        jwks: dict[str, Any] | None = None,
        *,
        url: str | None = None,
        session: Callable[[], aiohttp.ClientSession] | None = None,
        refresh_min_interval_s: float = 10.0,
    ) -> None:
        self._keys: dict[str, Any] = {}
        self._url = url
        self._session = session
        self._min_interval = refresh_min_interval_s
        self._fetched_at = float("-inf")
        # The last fetch failed: a key we do not know may be one we could not fetch.
        self._unreachable = False
        self._lock = asyncio.Lock()
        if jwks is not None:
            self._load(jwks)

    def _load(self, jwks: dict[str, Any]) -> None:
        keys = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and jwk.get("kid"):
                keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
        self._keys = keys

    def known(self, kid: str) -> Any | None:
        """The key of that id if it is at hand (no fetch)."""
        return self._keys.get(kid)

    async def get(self, kid: str) -> Any | None:
        key = self._keys.get(kid)
        if key is not None or self._url is None or self._session is None:
            return key
        async with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self._min_interval:
                await self._fetch()
        key = self._keys.get(kid)
        if key is None and self._unreachable:
            # Our fault, not the token's: a 401 would make the client log its user out.
            raise Unavailable("the signing keys could not be fetched")
        return key

    async def _fetch(self) -> None:
        assert self._url is not None and self._session is not None
        self._fetched_at = time.monotonic()
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with self._session().get(self._url, timeout=timeout) as response:
                response.raise_for_status()
                jwks = await response.json()
            if not isinstance(jwks, dict):
                raise ValueError("a JWKS document is a JSON object")
            self._load(jwks)
            self._unreachable = False
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
            self._unreachable = True
            log.warning("could not fetch the signing keys", extra={"error": repr(exc)})


# How long a token `identify_now` refused is refused without a second verification.
REFUSAL_MEMORY_S = 1.0


class TokenVerifier:
    def __init__(
        self, keys: KeySet, *, issuer: str, audience: str, cache_size: int = 10_000
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        # Verifying a signature costs ~0.3 ms of CPU, and clients send one token
        # many times. The cache key is the whole token, signature included, and an
        # entry lives no longer than the token's own `exp`.
        self._verified: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self._cache_size = cache_size
        # Tokens whose signature or claims were refused in the last REFUSAL_MEMORY_S
        # (monotonic deadlines): the gateway's edge tries a token without awaiting
        # and leaves a refused one to aiohttp's route, which would verify it again.
        # Briefly only: a token refused for an `iat` just ahead of this clock is
        # valid a moment later.
        self._refused: OrderedDict[str, float] = OrderedDict()

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; 401 for anything else. The algorithm is
        pinned, so `alg: none` and HS256-with-the-public-key tokens fail here."""
        key = await self.keys.get(self._key_id(token))
        if key is None:
            raise unauthorized()
        return self._decode(token, key)

    def _key_id(self, token: str) -> str:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthorized() from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise unauthorized()
        return kid

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            raise unauthorized() from None
        return claims

    def cached(self, token: str) -> Identity | None:
        """The identity of a token verified before and not expired yet."""
        cached = self._verified.get(token)
        if cached is not None:
            if cached[0] > time.time():
                self._verified.move_to_end(token)
                return cached[1]
            del self._verified[token]
        return None

    def identify_now(self, token: str) -> Identity | None:
        """`identify` without awaiting: the identity of a valid token that was
        verified before or whose key is at hand (verified now, and remembered);
        None when only `identify` can tell, an invalid token included (the
        gateway's edge then leaves the request to aiohttp, which answers 401)."""
        identity = self.cached(token)
        if identity is not None:
            return identity
        try:
            key = self.keys.known(self._key_id(token))
            if key is None:
                return None
            return self._remember(token, self._decode(token, key))
        except ApiError:
            self._refused[token] = time.monotonic() + REFUSAL_MEMORY_S
            if len(self._refused) > self._cache_size:
                self._refused.popitem(last=False)
            return None

    async def identify(self, token: str) -> Identity:
        cached = self.cached(token)
        if cached is not None:
            return cached
        refused_until = self._refused.pop(token, None)
        if refused_until is not None and refused_until > time.monotonic():
            raise unauthorized()  # just refused by identify_now: not verified twice
        return self._remember(token, await self.verify(token))

    def _remember(self, token: str, claims: dict[str, Any]) -> Identity:
        identity = self._identity(claims)
        self._verified[token] = (float(claims["exp"]), identity)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return identity

    @staticmethod
    def _identity(claims: dict[str, Any]) -> Identity:
        try:
            return Identity(
                user_id=claims["sub"],
                username=claims.get("preferred_username"),
                display_name=claims.get("name") or claims.get("preferred_username") or "",
                avatar_url=claims.get("picture"),
                role=claims.get("role", "user"),
            )
        except ValidationError:
            raise unauthorized() from None


def load_jwks(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("a JWKS document is a JSON object")
    return data
