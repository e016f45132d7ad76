"""Settings every process reads from its environment."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024


class CommonSettings(BaseSettings):
    """What all three processes share; each process subclasses it."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"
    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on every interface
    port: int = 8080
    log_level: str = "INFO"
    # /metrics on a port of its own (not reachable through the public one), or
    # on the main port when unset.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped from another pod or container

    database_url: str = "postgresql://postgres@localhost/postgres"
    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=10, ge=1)
    db_connect_timeout_s: float = Field(default=30.0, gt=0)
    db_command_timeout_s: float = Field(default=10.0, gt=0)

    max_body_bytes: int = Field(default=MIB, ge=1)
    # A connection that has not sent a complete request head this long after it
    # opened (or after its previous response) is closed: a slowloris cannot hold
    # connections open. Idle keep-alive connections close after the same time, so
    # it stays above a load balancer's idle timeout (60 s on most).
    header_timeout_s: float = Field(default=75.0, gt=0)

    jwt_issuer: str = "rooms-gateway"
    jwt_audience: str = "rooms-api"

    # The proxies (load balancers, ingress, the gateway in front of a service) whose
    # X-Forwarded-For entries are believed: comma-separated addresses or networks
    # (CIDR). Empty: the peer is the client, whatever the header says.
    trusted_proxies: Annotated[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode
    ] = ()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            # strict=True: "10.0.0.1/8" (host bits set) is a typo, not 10.0.0.0/8.
            return tuple(ipaddress.ip_network(str(part), strict=True) for part in value)
        return value

    # SIGTERM to exit: sockets are closed with 1001, in-flight requests finish.
    shutdown_grace_s: float = Field(default=10.0, gt=0)


class ServiceSettings(CommonSettings):
    """A room service: it verifies tokens against the gateway's public keys."""

    # Where the public keys come from: a JWKS document inline (tests, secrets),
    # or the gateway's /.well-known/jwks.json, fetched and cached by key id.
    jwks: str | None = None
    jwks_url: str | None = "http://127.0.0.1:8080/.well-known/jwks.json"
    jwks_refresh_min_interval_s: float = Field(default=10.0, ge=0)

    # Real-time fan-out (shared.realtime). A socket that falls this many events
    # behind is closed with 1013; past this many undelivered notifications, the
    # replica ends the streams of the topic with 1012 rather than grow.
    realtime_subscriber_buffer: int = Field(default=1000, ge=1)
    realtime_inbox_size: int = Field(default=10000, ge=1)
    # How often the LISTEN connection is asked `SELECT 1`, and how long it has to answer.
    realtime_liveness_interval_s: float = Field(default=10.0, gt=0)
    realtime_liveness_timeout_s: float = Field(default=5.0, gt=0)
