"""Collision-resistant string ids in the style of the meeting document's ("clx1a2b...")."""

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_LENGTH = 25  # "c" + 24 base-36 characters: about 124 random bits


class RandomText:
    """Strings of `length` characters of `alphabet`, each uniform and independent,
    from one read of the operating system's generator: random bytes below the
    largest multiple of the alphabet's size are kept and mapped to a character
    (byte % size), the others dropped (bytes.translate: C speed)."""

    def __init__(self, alphabet: str, length: int) -> None:
        size = len(alphabet)
        assert 0 < size <= 256 and alphabet.isascii()
        kept = 256 - 256 % size
        self._table = bytes(ord(alphabet[b % size]) if b < kept else 0 for b in range(256))
        self._dropped = bytes(range(kept, 256))
        self._length = length
        # At least half the bytes are kept, whatever the alphabet: a draw of twice
        # the length and some falls short next to never (and is then drawn again).
        self._draw = 2 * length + 8

    def __call__(self) -> str:
        while True:
            text = secrets.token_bytes(self._draw).translate(self._table, self._dropped)
            if len(text) >= self._length:
                return text[: self._length].decode("ascii")


_ID_TEXT = RandomText(_ALPHABET, _LENGTH - 1)


def new_id() -> str:
    return "c" + _ID_TEXT()
