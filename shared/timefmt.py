"""Timestamps as the API writes them: ISO 8601, UTC, milliseconds, "Z"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema


def iso_ms(value: datetime) -> str:
    # isoformat is C code; strftime costs several times more, 50 times a page.
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


# to_char's format of iso_ms. The colons are quoted (literal text to to_char): a
# colon before a letter would read as a variable to pgbench, which runs the stores'
# statements in `make bench` (tests/integration/test_bench_statements.py).
_ISO_MS_FORMAT = 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"'


def iso_ms_sql(column: str) -> str:
    """What `iso_ms` writes, written by Postgres (milliseconds truncated, as
    isoformat truncates them): for rows read straight into a response, where
    decoding a timestamptz into a datetime and formatting it again cost the
    service more than the rest of the row."""
    return f"to_char({column} AT TIME ZONE 'UTC', '{_ISO_MS_FORMAT}')"


_SCHEMA = WithJsonSchema(
    {"type": "string", "format": "date-time", "example": "2026-03-03T10:30:00.000Z"}
)

Timestamp = Annotated[datetime, PlainSerializer(iso_ms, return_type=str), _SCHEMA]

# A timestamp the database already wrote as the API does (`iso_ms_sql`): the same
# in the documents and on the wire as `Timestamp`.
TimestampText = Annotated[str, _SCHEMA]
