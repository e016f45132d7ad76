"""Collision-resistant string ids in the style of the meeting document's ("clx1a2b...")."""

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_LENGTH = 25  # "c" + 24 base-36 characters: about 124 random bits


def new_id() -> str:
    return "c" + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH - 1))
