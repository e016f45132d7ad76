"""Idempotency-Key (the IETF draft of that name): a retry of a write gets the first
answer again and changes nothing.

A handler that creates something runs its effect inside `once(request)`:

    async with once(request) as scope:
        if scope.replay is not None:
            return scope.replay
        created = await store.create(scope.conn, ...)
        return await scope.answer(json_model(created, 201))

Without the header, that is a connection, and the effect is atomic by itself (its
own transaction, or a single statement). With it, a transaction: the key is
claimed in it before the effect and given the answer after it, so
the key, the effect and the answer commit together or not at all. Keys are per
user; the same key with another method, path or body is a 422. Only successful
answers are kept: a refused request changed nothing and is judged afresh on retry.
Keys are purged after `TTL_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from shared import idempotency_store
from shared.auth import identity_of
from shared.background import background
from shared.db import POOL_KEY, Conn
from shared.endpoints import endpoint_of
from shared.errors import FAULTS, ApiError

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
TTL_S = 24 * 60 * 60
PURGE_INTERVAL_S = 60 * 60
REPLAYED_HEADER = "Idempotent-Replayed"

KEY_REUSED = "idempotency key reused with a different request"
INVALID_KEY = "Idempotency-Key: must be 1 to 255 characters"


def key_of(request: web.Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or "\x00" in key:
        raise ApiError(400, INVALID_KEY)
    return key


async def fingerprint(request: web.Request) -> bytes:
    """What makes two requests the same: method, path and body, byte for byte."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.rel_url.raw_path}\n".encode())
    digest.update(await request.read())
    return digest.digest()


@dataclass
class Scope:
    conn: Conn
    replay: web.Response | None = None
    _claimed: tuple[str, str] | None = field(default=None, repr=False)

    async def answer(self, response: web.Response) -> web.Response:
        """Keep a successful answer for the key's retries; pass any answer on."""
        if self._claimed is not None and 200 <= response.status < 300:
            assert response.text is not None
            user_id, key = self._claimed
            await idempotency_store.answer(self.conn, user_id, key, response.status, response.text)
        return response


async def _replay(conn: Conn, user_id: str, key: str, request_hash: bytes) -> web.Response | None:
    stored = await idempotency_store.stored(conn, user_id, key)
    if stored is None:
        return None  # purged between the claim and the read: claim again
    if stored.request_hash != request_hash:
        raise ApiError(422, KEY_REUSED)
    response = web.Response(status=stored.status, text=stored.body, content_type="application/json")
    response.headers[REPLAYED_HEADER] = "true"
    return response


def once(request: web.Request) -> Once:
    """A connection; with a key, in a transaction with the key claimed (or its first
    answer ready in `replay`). Without one it is in no transaction: the effect makes
    its own (or is one statement), and costs no BEGIN and COMMIT round trips."""
    return Once(request)


class Once:
    """`once`'s context: without a key, the pool's own acquire context and no more
    (no generator machinery on every write: ~1.9 us); with one, `_keyed`."""

    __slots__ = ("_acquired", "_keyed", "_request")

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._acquired: Any = None
        self._keyed: contextlib.AbstractAsyncContextManager[Scope] | None = None

    async def __aenter__(self) -> Scope:
        request = self._request
        spec = endpoint_of(request.match_info.handler)
        assert spec is not None and spec.idempotent, "mark the endpoint idempotent=True"
        key = key_of(request)
        if key is None:
            self._acquired = request.app[POOL_KEY].acquire()
            return Scope(await self._acquired.__aenter__())
        self._keyed = _keyed(request, key)
        return await self._keyed.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        if self._keyed is not None:
            return await self._keyed.__aexit__(exc_type, exc, traceback)
        await self._acquired.__aexit__(exc_type, exc, traceback)
        return None


@contextlib.asynccontextmanager
async def _keyed(request: web.Request, key: str) -> AsyncIterator[Scope]:
    """In a transaction, the key claimed, or its first answer ready in `replay`."""
    request_hash = await fingerprint(request)
    async with request.app[POOL_KEY].acquire() as conn, conn.transaction():
        scope = Scope(conn)
        user_id = identity_of(request).user_id
        while True:
            if await idempotency_store.claim(conn, user_id, key, request_hash, TTL_S):
                scope._claimed = (user_id, key)
                break
            scope.replay = await _replay(conn, user_id, key, request_hash)
            if scope.replay is not None:
                break
        yield scope


async def _purge_every(app: web.Application, interval_s: float) -> None:
    while True:
        try:
            async with app[POOL_KEY].acquire() as conn:
                purged = await idempotency_store.purge(conn, TTL_S)
            if purged:
                log.info("purged idempotency keys", extra={"count": purged})
        except FAULTS as exc:
            log.warning("idempotency purge skipped", extra={"error": repr(exc)})
        except Exception:
            log.exception("idempotency purge failed")
        await asyncio.sleep(interval_s)


async def purge_ctx(app: web.Application) -> AsyncIterator[None]:
    """Keys older than TTL_S go: once at start, then every PURGE_INTERVAL_S."""
    async with background(_purge_every(app, PURGE_INTERVAL_S)):
        yield
