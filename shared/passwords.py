"""bcrypt, always off the event loop: one hash costs tens of milliseconds of CPU."""

from __future__ import annotations

import asyncio

import bcrypt

# bcrypt reads at most 72 bytes; the API refuses longer passwords instead of truncating.
MAX_PASSWORD_BYTES = 72


async def hash_password(password: str, rounds: int = 12) -> str:
    loop = asyncio.get_running_loop()
    salt = bcrypt.gensalt(rounds)
    hashed = await loop.run_in_executor(None, bcrypt.hashpw, password.encode(), salt)
    return hashed.decode()


async def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` matches. No stored password is longer than bcrypt reads (they
    are refused when set), so a longer one is wrong; it still costs one check, so that
    its answer takes as long as any other wrong password's."""
    secret = password.encode()
    loop = asyncio.get_running_loop()
    matches = await loop.run_in_executor(
        None, bcrypt.checkpw, secret[:MAX_PASSWORD_BYTES], hashed.encode()
    )
    return matches and len(secret) <= MAX_PASSWORD_BYTES
