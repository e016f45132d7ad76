"""Collision-resistant string ids in the style of the meeting document's ("clx1a2b...")."""

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_LENGTH = 25  # "c" + 24 base-36 characters: about 124 random bits
_SPACE = len(_ALPHABET) ** (_LENGTH - 1)


def base_n(number: int, alphabet: str, digits: int) -> str:
    """`number` (below len(alphabet) ** digits) in `digits` digits of `alphabet`."""
    base = len(alphabet)
    out = []
    for _ in range(digits):
        number, digit = divmod(number, base)
        out.append(alphabet[digit])
    return "".join(reversed(out))


def new_id() -> str:
    # One draw from the operating system's generator for the whole id, uniform over
    # every id, rather than one per character (a system call each).
    return "c" + base_n(secrets.randbelow(_SPACE), _ALPHABET, _LENGTH - 1)
