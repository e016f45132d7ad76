"""Opaque pagination cursors: a keyset position the client hands back unchanged."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.errors import ApiError
from shared.text import storable

INVALID_CURSOR = "invalid cursor"


def encode_cursor(*position: Any) -> str:
    raw = json.dumps(list(position), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, arity: int, *, message: str = INVALID_CURSOR) -> list[Any]:
    """The position `encode_cursor` wrote; 400 `message` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (ValueError, binascii.Error, RecursionError):
        raise ApiError(400, message) from None
    if not isinstance(position, list) or len(position) != arity:
        raise ApiError(400, message)
    return position


Key = TypeVar("Key", int, str)
BIGINT_MAX = 2**63 - 1


def encode_time_cursor(when: datetime, key: int | str) -> str:
    """A keyset position ordered by time, ties broken by `key`."""
    return encode_cursor(when.isoformat(), key)


def decode_time_cursor(
    cursor: str, key_type: type[Key], *, message: str = INVALID_CURSOR
) -> tuple[datetime, Key]:
    """The position `encode_time_cursor` wrote: an aware time, in UTC, and a key
    that fits its column (a positive bigint, or text Postgres can store)."""
    when_text, key = decode_cursor(cursor, 2, message=message)
    # type(), not isinstance(): a JSON true is not the id 1.
    if not isinstance(when_text, str) or type(key) is not key_type:
        raise ApiError(400, message)
    try:
        if isinstance(key, int) and not 0 < key <= BIGINT_MAX:
            raise ValueError("the key is out of the column's range")
        if isinstance(key, str):
            storable(key)
        when = datetime.fromisoformat(when_text)
        if when.tzinfo is None:
            raise ValueError("a cursor's time has a zone")
        # In UTC: an offset could carry year 1 or 9999 out of the driver's range.
        return when.astimezone(UTC), key
    except (ValueError, OverflowError):
        raise ApiError(400, message) from None
