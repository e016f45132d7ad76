"""/healthz (the process is alive), /readyz (it can do its work), /version."""

from __future__ import annotations

import asyncio
import logging
import platform
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel

from shared.bodies import json_model
from shared.endpoints import endpoint
from shared.version import VERSION

log = logging.getLogger(__name__)

ReadyCheck = Callable[[web.Application], Awaitable[bool]]
READY_CHECKS_KEY = web.AppKey("ready_checks", dict[str, ReadyCheck])
# Dependencies reported by `/readyz?upstreams` that do not make this process unready
# (the gateway's services: one down must not take the whole edge out of rotation).
UPSTREAM_CHECKS_KEY = web.AppKey("upstream_checks", dict[str, ReadyCheck])
SERVICE_NAME_KEY = web.AppKey("service_name", str)


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, bool]
    upstreams: dict[str, bool] | None = None


class VersionOut(BaseModel):
    service: str
    version: str
    python: str


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
    "The process can serve: its database reachable and migrated. With `?upstreams`"
    " (the gateway) the services' health too, which does not change the status",
    public=True,
    responses={200: Readiness, 503: Readiness},
    tags=("operations",),
)
async def readyz(request: web.Request) -> web.Response:
    app = request.app
    own = app[READY_CHECKS_KEY]
    upstreams = app.get(UPSTREAM_CHECKS_KEY, {}) if "upstreams" in request.query else {}
    outcome, reported = await asyncio.gather(_run_all(own, app), _run_all(upstreams, app))
    ready = all(outcome.values())
    body = Readiness(
        status="ready" if ready else "unavailable",
        checks=outcome,
        upstreams=reported if "upstreams" in request.query else None,
    )
    return web.Response(
        text=body.model_dump_json(exclude_none=True),
        status=200 if ready else 503,
        content_type="application/json",
    )


@endpoint(
    "The running build's version",
    public=True,
    responses={200: VersionOut},
    tags=("operations",),
    database=False,
)
async def version(request: web.Request) -> web.Response:
    return json_model(
        VersionOut(
            service=request.app[SERVICE_NAME_KEY],
            version=VERSION,
            python=platform.python_version(),
        )
    )


async def _run_all(checks: dict[str, ReadyCheck], app: web.Application) -> dict[str, bool]:
    results = await asyncio.gather(*(_run(name, check, app) for name, check in checks.items()))
    return dict(zip(checks, results, strict=True))


async def _run(name: str, check: ReadyCheck, app: web.Application) -> bool:
    try:
        return await asyncio.wait_for(check(app), timeout=3)
    except Exception as exc:
        log.warning("readiness check failed", extra={"check": name, "error": repr(exc)})
        return False
