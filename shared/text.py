"""Text that Postgres can store: it holds neither NUL nor unpaired surrogates
(JSON can carry both as escapes). Refused as a 400 naming the field, never
left for the driver to fail on as a 500."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode") from None
    return value


StorableStr = Annotated[str, AfterValidator(storable)]
