from __future__ import annotations

from pydantic import Field

from shared.passwords import PasswordSettings
from shared.settings import MIB, ServiceSettings


class ChatSettings(ServiceSettings, PasswordSettings):
    port: int = 8081
    max_public_rooms: int = Field(default=5, ge=0)
    # History pages kept, checked still current on every use (chat_service.history_cache):
    # at most this many bytes of them; 0 keeps none.
    history_cache_bytes: int = Field(default=32 * MIB, ge=0)
