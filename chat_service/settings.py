from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class ChatSettings(ServiceSettings):
    port: int = 8081
    max_public_rooms: int = Field(default=5, ge=0)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
