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
    # Keyless send statements a replica runs at once (chat_service.sending): what
    # arrives meanwhile goes in the next one. Raise it when sends spread over many
    # rooms and Postgres has cores to spare.
    send_statements_in_flight: int = Field(default=1, ge=1)
