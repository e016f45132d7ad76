"""Room codes: `abc-def-ghi`, three groups of three lowercase letters."""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from aiohttp import web

from shared.ids import RandomText

CODE_PATTERN = re.compile(r"^[a-z]{3}-[a-z]{3}-[a-z]{3}$")
MAX_ATTEMPTS = 10
_LETTERS = RandomText(string.ascii_lowercase, 9)

# A source of candidate codes; the app takes one so tests can force collisions.
CodeGenerator = Callable[[], str]
CODE_GENERATOR_KEY: web.AppKey[CodeGenerator] = web.AppKey("room_code_generator")


def new_room_code() -> str:
    """26**9 (about 5.4e12) codes; `secrets` so codes cannot be predicted from earlier
    ones, drawn once for the whole code."""
    letters = _LETTERS()
    return f"{letters[:3]}-{letters[3:6]}-{letters[6:]}"


def normalise_code(code: str) -> str:
    """Codes are read aloud and typed: accept any case and surrounding spaces."""
    return code.strip().lower()
