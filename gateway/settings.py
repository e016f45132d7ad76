from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import CommonSettings


class GatewaySettings(CommonSettings):
    port: int = 8080

    chat_url: str = "http://127.0.0.1:8081"
    meeting_url: str = "http://127.0.0.1:8082"
    upstream_connect_timeout_s: float = Field(default=5.0, gt=0)
    # Time allowed between two reads from an upstream before the client gets a 504.
    upstream_timeout_s: float = Field(default=30.0, gt=0)
    upstream_pool_size: int = Field(default=200, ge=1)

    # The signing key: inline PEM, a PEM file, or (development only) generated into jwt_key_dir.
    jwt_private_key: str | None = None
    jwt_private_key_file: Path | None = None
    jwt_key_dir: Path = Path(".data")

    access_token_ttl_s: int = Field(default=15 * 60, ge=30)
    guest_token_ttl_s: int = Field(default=4 * 60 * 60, ge=30)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 60 * 60, ge=60)

    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    login_window_s: int = Field(default=15 * 60, ge=1)
    login_max_failures_per_user: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    # Trust X-Forwarded-For from a load balancer in front of the gateway.
    trust_forwarded_for: bool = False
