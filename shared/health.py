"""/healthz (the process is alive) and /readyz (it can do its work)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel

from shared.bodies import json_model
from shared.endpoints import endpoint

log = logging.getLogger(__name__)

ReadyCheck = Callable[[web.Application], Awaitable[bool]]
READY_CHECKS_KEY = web.AppKey("ready_checks", dict[str, ReadyCheck])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, bool]


@endpoint(
    "The process is alive",
    public=True,
    responses={200: Health},
    tags=("operations",),
    database=False,
)
async def healthz(request: web.Request) -> web.Response:
    return json_model(Health(status="ok"))


@endpoint(
    "The process can serve: database reachable and migrated (the gateway: upstreams too)",
    public=True,
    responses={200: Readiness, 503: Readiness},
    tags=("operations",),
)
async def readyz(request: web.Request) -> web.Response:
    checks = request.app[READY_CHECKS_KEY]
    results = await asyncio.gather(
        *(_run(name, check, request.app) for name, check in checks.items())
    )
    outcome = dict(zip(checks, results, strict=True))
    ready = all(outcome.values())
    return json_model(
        Readiness(status="ready" if ready else "unavailable", checks=outcome), 200 if ready else 503
    )


async def _run(name: str, check: ReadyCheck, app: web.Application) -> bool:
    try:
        return await asyncio.wait_for(check(app), timeout=3)
    except Exception as exc:
        log.warning("readiness check failed", extra={"check": name, "error": repr(exc)})
        return False
