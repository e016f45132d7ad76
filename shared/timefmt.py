"""Timestamps as the API writes them: ISO 8601, UTC, milliseconds, "Z"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema


def iso_ms(value: datetime) -> str:
    # isoformat is C code; strftime costs several times more, 50 times a page.
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


Timestamp = Annotated[
    datetime,
    PlainSerializer(iso_ms, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "example": "2026-03-03T10:30:00.000Z"}
    ),
]
