from __future__ import annotations

from shared.settings import ServiceSettings


class MeetingSettings(ServiceSettings):
    port: int = 8082
