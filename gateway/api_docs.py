"""The gateway's OpenAPI document: its own operations and those of the services
behind it, since clients see only the gateway."""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
from aiohttp import web

from gateway.openapi_merge import merge_documents
from gateway.upstream import SESSION_KEY, Upstream
from shared.openapi import Document

log = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
OPERATIONAL = ("/healthz", "/readyz", "/version", "/metrics", "/openapi.json", "/docs")


class MergedDocs:
    def __init__(self, upstreams: dict[str, Upstream]) -> None:
        self.upstreams = upstreams
        self._cached: tuple[float, Document] | None = None

    async def __call__(self, app: web.Application, own: Document) -> Document:
        if self._cached is not None and time.monotonic() - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        others = {}
        complete = True
        for prefix, upstream in self.upstreams.items():
            document = await self._fetch(app[SESSION_KEY], upstream)
            if document is None:
                complete = False
                continue
            for path in OPERATIONAL:
                document.get("paths", {}).pop(path, None)
            others[prefix] = document
        merged = merge_documents(own, others)
        if complete:
            # A partial document is served, but not kept: the next call tries again.
            self._cached = (time.monotonic(), merged)
        return merged

    @staticmethod
    async def _fetch(session: aiohttp.ClientSession, upstream: Upstream) -> Any:
        try:
            timeout = aiohttp.ClientTimeout(total=3)
            async with session.get(f"{upstream.url}/openapi.json", timeout=timeout) as response:
                response.raise_for_status()
                return await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                "no OpenAPI document from upstream",
                extra={"upstream": upstream.name, "error": repr(exc)},
            )
            return None
