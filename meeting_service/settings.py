from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from shared.settings import ServiceSettings

UrlList = Annotated[list[str], NoDecode]


class MeetingSettings(ServiceSettings):
    port: int = 8082

    # The room socket's frame budget: `socket_frame_rate` a second sustained,
    # `socket_frame_burst` at once (a joiner's offers and ICE candidates come in
    # bursts). A frame over budget is refused with an error frame; past
    # `socket_abuse_limit` refusals (one forgiven a second) the socket is closed
    # with 1008.
    socket_frame_rate: float = Field(default=50.0, gt=0)
    socket_frame_burst: int = Field(default=200, ge=1)
    socket_abuse_limit: int = Field(default=50, ge=1)

    # Presence across replicas: each replica refreshes its heartbeat this often;
    # one silent for `presence_stale_s` is taken for dead and its sockets'
    # participants for disconnected.
    presence_heartbeat_s: float = Field(default=5.0, gt=0)
    presence_stale_s: float = Field(default=20.0, gt=0)
    # How long a large signal's row is kept for the replicas to read it.
    signal_ttl_s: float = Field(default=60.0, gt=0)

    # ICE servers handed to joined participants (comma-separated lists).
    # TURN credentials follow the TURN REST API convention (coturn's
    # use-auth-secret / static-auth-secret = TURN_SECRET), valid for turn_ttl_s.
    stun_urls: UrlList = Field(default_factory=list)
    turn_urls: UrlList = Field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_s: int = Field(default=86400, ge=60)

    @field_validator("stun_urls", "turn_urls", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value


SETTINGS_KEY = web.AppKey("settings", MeetingSettings)
