"""Code that reads a library's private internals runs only on the releases it was
written against and tested with: on another, the caller takes the library's own
path (slower, never wrong). shared.pool's fast release (asyncpg) and shared.server's
give-back (aiohttp) ask this."""

from __future__ import annotations

from collections.abc import Collection


def tested_release(version: str, releases: Collection[tuple[int, int]]) -> bool:
    """Whether `version` (a library's `__version__`) is one of `releases`, as (major, minor)."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) in releases
