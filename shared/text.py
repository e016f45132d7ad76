"""Text that Postgres can store: it holds neither NUL nor unpaired surrogates
(JSON can carry both as escapes). Refused as a 400 naming the field, never
left for the driver to fail on as a 500.

And names people read (room names, display names): one form per name (NFC),
something to see, nothing that reorders the text around them."""

from __future__ import annotations

import unicodedata
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

# Bidirectional embeddings, overrides (U+202A-U+202E) and isolates (U+2066-U+2069):
# they reorder the text after them, beyond the name. The marks (LRM, RLM, ALM) do
# not, and right-to-left names need them.
BIDI_OVERRIDES = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
# Categories that put a glyph on the screen: letters, numbers, punctuation, symbols.
_VISIBLE_CATEGORIES = frozenset("LNPS")
# Assigned as letters or symbols but drawn as nothing: the Hangul fillers and the
# blank Braille pattern, the usual stand-ins for an "empty" name.
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def readable_name(value: str) -> str:
    """A name as stored: NFC, trimmed; refused when it has no visible character,
    a control character (C0, C1, line and paragraph separators) or a bidi override."""
    value = unicodedata.normalize("NFC", storable(value)).strip()
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc" or category in ("Zl", "Zp"):
            raise ValueError("must not contain control characters")
        if char in BIDI_OVERRIDES:
            raise ValueError("must not contain bidirectional overrides")
    if not any(
        unicodedata.category(char)[0] in _VISIBLE_CATEGORIES and char not in _BLANK_GLYPHS
        for char in value
    ):
        raise ValueError("must contain a visible character")
    return value


ReadableName = Annotated[str, AfterValidator(readable_name)]
