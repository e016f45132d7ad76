"""Opaque pagination cursors: a keyset position the client hands back unchanged."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from shared.errors import ApiError

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
