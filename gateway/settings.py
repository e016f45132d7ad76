from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from shared.passwords import PasswordSettings
from shared.settings import CommonSettings


class GatewaySettings(CommonSettings, PasswordSettings):
    port: int = 8080

    chat_url: str = "http://127.0.0.1:8081"
    meeting_url: str = "http://127.0.0.1:8082"
    upstream_connect_timeout_s: float = Field(default=5.0, gt=0)
    # Time allowed between two reads from an upstream before the client gets a 504.
    upstream_timeout_s: float = Field(default=30.0, gt=0)
    # Connections to each service for HTTP (proxied WebSockets have their own, unlimited),
    # and how long a request waits for one before it is answered 503.
    upstream_pool_size: int = Field(default=200, ge=1)
    upstream_pool_wait_s: float = Field(default=5.0, gt=0)

    # The signing key: inline PEM, a PEM file, or (development only) generated into jwt_key_dir.
    jwt_private_key: str | None = None
    jwt_private_key_file: Path | None = None
    jwt_key_dir: Path = Path(".data")
    # The key the last rotation replaced, published in the JWKS (never used to sign)
    # so that tokens it signed stay valid until they expire. Unset: the file beside
    # the key file (`<name>.previous<suffix>`) when there is one.
    jwt_previous_private_key: str | None = None
    jwt_previous_private_key_file: Path | None = None

    access_token_ttl_s: int = Field(default=15 * 60, ge=30)
    guest_token_ttl_s: int = Field(default=4 * 60 * 60, ge=30)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 60 * 60, ge=60)

    login_window_s: int = Field(default=15 * 60, ge=1)
    login_max_failures_per_user: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    # Registrations and guest tokens per client address, every attempt counted.
    register_window_s: int = Field(default=60 * 60, ge=1)
    register_max_per_address: int = Field(default=20, ge=1)
    guest_window_s: int = Field(default=60 * 60, ge=1)
    guest_max_per_address: int = Field(default=60, ge=1)
    # How often expired login attempts and refresh tokens are deleted.
    purge_interval_s: float = Field(default=60 * 60, gt=0)
    # Replaced by TRUSTED_PROXIES (shared.settings), which names whom to believe:
    # refused when set, rather than ignored, so that no deployment silently changes.
    trust_forwarded_for: str | None = None

    @field_validator("trust_forwarded_for")
    @classmethod
    def _replaced(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(
                "TRUST_FORWARDED_FOR is replaced by TRUSTED_PROXIES: the addresses or"
                " networks (CIDR) of the proxies in front of the gateway"
            )
        return None

    # Origins whose pages may call the API (CORS), comma-separated:
    # "https://app.example.com,http://localhost:3000", or "*" for any. None by default.
    cors_allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for origin in value:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(f"not an origin (scheme://host[:port], no path): {origin!r}")
        return tuple(value)


_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[^/\s:\[\]]+)(:\d{1,5})?")
