"""Collision-resistant string ids in the style of the meeting document's ("clx1a2b...")."""

import os
import secrets
import threading

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_LENGTH = 25  # "c" + 24 base-36 characters: about 124 random bits


class RandomBytes:
    """Bytes of the operating system's generator, read `size` at a time and each
    handed out once. A read releases the GIL, which hands it to a thread waiting
    for it (the log writer) and takes it back: reading for every id cost more
    than the id. A forked child starts with nothing read."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._buffer, self._offset = b"", 0
        self._lock = threading.Lock()  # another thread may have held it at the fork

    def take(self, count: int) -> bytes:
        with self._lock:
            end = self._offset + count
            if end > len(self._buffer):
                self._buffer, self._offset = secrets.token_bytes(max(self._size, count)), 0
                end = count
            taken = self._buffer[self._offset : end]
            self._offset = end
            return taken


_RANDOM = RandomBytes()


class RandomText:
    """Strings of `length` characters of `alphabet`, each uniform and independent,
    from the operating system's generator (RandomBytes): random bytes below the
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
            text = _RANDOM.take(self._draw).translate(self._table, self._dropped)
            if len(text) >= self._length:
                return text[: self._length].decode("ascii")


_ID_TEXT = RandomText(_ALPHABET, _LENGTH - 1)


def new_id() -> str:
    return "c" + _ID_TEXT()
