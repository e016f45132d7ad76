"""Prometheus metrics: requests by route template and status, and their latency."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from shared.endpoints import endpoint


class HttpMetrics:
    def __init__(self, service: str) -> None:
        # A registry per application, so several apps can live in one test process.
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests handled",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to the response's headers",
            ["service", "method", "route"],
            registry=self.registry,
        )
        self.service = service
        # The labelled children by (method, route, status): found once, not per request.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(self.service, method, route, str(status)),
                self.latency.labels(self.service, method, route),
            )
        children[0].inc()
        children[1].observe(seconds)


METRICS_KEY = web.AppKey("metrics", HttpMetrics)


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    # The template, never the raw path: ids in paths would explode the label set.
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS_KEY]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.record(request.method, _route_of(request), status, time.perf_counter() - started)


@endpoint(
    "Prometheus metrics in the text format", public=True, tags=("operations",), database=False
)
async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_KEY].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
