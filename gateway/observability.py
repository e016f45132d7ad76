"""The gateway's own metrics (upstream failures, login refusals) and its audit lines."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import Counter

from shared.metrics import METRICS_KEY, PROXIED_KEY

audit_log = logging.getLogger("gateway.audit")


class GatewayMetrics:
    def __init__(self, app: web.Application) -> None:
        registry = app[METRICS_KEY].registry
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Requests answered 502 (service unreachable) or 504 (service too slow)",
            ["service", "status"],
            registry=registry,
        )
        self.login_refusals = Counter(
            "gateway_login_refusals_total",
            "Logins refused: 'limited' (429, too many attempts), 'credentials' (401)",
            ["reason"],
            registry=registry,
        )
        # Created at zero, so a rate() works before the first refusal.
        for reason in ("limited", "credentials"):
            self.login_refusals.labels(reason)


GATEWAY_METRICS_KEY = web.AppKey("gateway_metrics", GatewayMetrics)


def count_upstream_error(request: web.Request, service: str, status: int) -> None:
    request.app[GATEWAY_METRICS_KEY].upstream_errors.labels(service, str(status)).inc()


def proxied_as(request: web.Request, service: str, route: str | None) -> None:
    """Count this request under the service's own route template when it named
    one, else under the gateway's (when the service never answered)."""
    if route is None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
    request[PROXIED_KEY] = (service, route)


def login_refused(
    request: web.Request,
    *,
    login_name: str,
    client: str,
    reason: str,
    user_id: str | None = None,
    retry_after: int | None = None,
) -> None:
    """One audit line and one count per refused login. Never the password."""
    request.app[GATEWAY_METRICS_KEY].login_refusals.labels(reason).inc()
    audit_log.warning(
        "login locked out" if reason == "limited" else "login refused",
        extra={
            "audit": "login_refused",
            "reason": reason,
            "login": login_name,
            "client": client,
            "retry_after_s": retry_after,
            "user_id": user_id,
        },
    )
