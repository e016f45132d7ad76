from __future__ import annotations

from pydantic import Field

from shared.passwords import PasswordSettings
from shared.settings import ServiceSettings


class ChatSettings(ServiceSettings, PasswordSettings):
    port: int = 8081
    max_public_rooms: int = Field(default=5, ge=0)
