"""Prometheus metrics.

Per request base_app's request middleware does one label lookup and one
observe (plus an int kept in Python for the in-flight count); everything else (the database
pool, open WebSockets, in-flight requests, the process) is read when
Prometheus scrapes, by collectors, so it costs nothing on the hot path.

`service` on the HTTP families is the service whose route it is: at a room
service its own name, at the gateway "gateway" for its own routes and the
upstream's name ("chat", "meeting") for proxied ones, whose `route` is then
the service's own route template, read from the ROUTE_HEADER it answers with.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.db import POOL_KEY
from shared.endpoints import endpoint
from shared.version import VERSION

# A service names the route template it matched, for the gateway's metrics;
# the gateway reads it and drops it from what the client gets.
ROUTE_HEADER = "X-Route-Template"
# Set by a proxy: (service, route template) to count the request under. Both keys
# are None from the start of the request middleware (`HttpMetrics.start`).
PROXIED_KEY: web.RequestKey[tuple[str, str] | None] = web.RequestKey("metrics_proxied")
# Set when a WebSocket handshake goes out: the (service, route) it counts under.
_WEBSOCKET_KEY: web.RequestKey[tuple[str, str] | None] = web.RequestKey("metrics_websocket")
# Sub-millisecond buckets too: most answers here take well under 5 ms.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class HttpMetrics:
    def __init__(self, service: str) -> None:
        # A registry per application, so several apps can live in one test process.
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        Info("rooms_build", "The running build", registry=self.registry).info(
            {"version": VERSION, "service": service}
        )
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests handled (a WebSocket session is one request, status 101)",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to the response's end (WebSocket sessions are not in it)",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.service = service
        # A room service names its matched route template in ROUTE_HEADER.
        self.announce_route = False
        # Kept as plain ints, read by a collector at scrape time.
        self.in_flight = 0
        self.websockets: dict[tuple[str, str], int] = {}
        self.registry.register(_LiveCollector(self))
        # The labelled children by (service, method, route, status): found once, not
        # per request.
        self._children: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}

    def record(
        self, service: str, method: str, route: str, status: int, seconds: float | None
    ) -> None:
        """Count a request; time it unless `seconds` is None (a WebSocket session,
        which gets no latency series at all)."""
        if seconds is None:
            self.requests.labels(service, method, route, str(status)).inc()
            return
        key = (service, method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(service, method, route, str(status)),
                self.latency.labels(service, method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)


class _LiveCollector(Collector):
    def __init__(self, metrics: HttpMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "http_requests_in_flight",
            "HTTP requests being handled (open WebSockets are counted apart)",
            value=self.metrics.in_flight,
        )
        websockets = GaugeMetricFamily(
            "websockets_open", "Open WebSocket sessions", labels=["service", "route"]
        )
        for (service, route), count in sorted(self.metrics.websockets.items()):
            websockets.add_metric([service, route], count)
        yield websockets


class PoolCollector(Collector):
    """The asyncpg pool's size and connections in use, when it exists."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.app.get(POOL_KEY)
        if pool is None:
            return
        size = pool.get_size()
        yield GaugeMetricFamily("db_pool_size", "Connections the pool holds", value=size)
        yield GaugeMetricFamily(
            "db_pool_max_size", "Connections the pool may hold", value=pool.get_max_size()
        )
        yield GaugeMetricFamily(
            "db_pool_in_use",
            "Connections lent out (a LISTEN connection is one for good)",
            value=size - pool.get_idle_size(),
        )


METRICS_KEY = web.AppKey("metrics", HttpMetrics)


def route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    # The template, never the raw path: ids in paths would explode the label set.
    return resource.canonical if resource is not None else "unmatched"


def _labels(request: web.Request, metrics: HttpMetrics) -> tuple[str, str]:
    proxied = request[PROXIED_KEY]
    return proxied if proxied is not None else (metrics.service, route_of(request))


def start(request: web.Request, metrics: HttpMetrics) -> float:
    """A request begins (base_app's request middleware): it is in flight."""
    request[PROXIED_KEY] = None
    request[_WEBSOCKET_KEY] = None
    metrics.in_flight += 1
    return time.perf_counter()


def finish(request: web.Request, metrics: HttpMetrics, status: int, started: float) -> None:
    """Its handler returned with `status`, or raised (CLIENT_CLOSED_REQUEST when
    the client went away first, 500 for an error nothing answered)."""
    service, route = _labels(request, metrics)
    websocket = request[_WEBSOCKET_KEY]
    if websocket is None:
        metrics.in_flight -= 1
        metrics.record(service, request.method, route, status, time.perf_counter() - started)
    else:
        metrics.websockets[websocket] -= 1
        # However the session ended, it was a 101; its length is no latency.
        metrics.record(service, request.method, route, 101, None)


def count_websocket(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Part of the app's on_response_prepare: a 101 is a WebSocket session starting.
    It leaves the in-flight count for the open WebSockets' until the handler returns."""
    if response.status != 101:
        return
    assert isinstance(request, web.Request)
    metrics = request.app[METRICS_KEY]
    if metrics.announce_route:
        response.headers[ROUTE_HEADER] = route_of(request)
    key = _labels(request, metrics)
    request[_WEBSOCKET_KEY] = key
    metrics.in_flight -= 1
    metrics.websockets[key] = metrics.websockets.get(key, 0) + 1


@endpoint(
    "Prometheus metrics in the text format", public=True, tags=("operations",), database=False
)
async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_KEY].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


@dataclass(frozen=True)
class MetricsListener:
    host: str
    port: int


def metrics_server_ctx(
    listener: MetricsListener,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """/metrics on a port of its own (METRICS_PORT), so that it need not be public."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        metrics_app = web.Application()
        metrics_app[METRICS_KEY] = app[METRICS_KEY]
        metrics_app.router.add_get("/metrics", metrics_handler)
        runner = web.AppRunner(metrics_app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, listener.host, listener.port).start()
            yield
        finally:
            await runner.cleanup()

    return ctx
