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
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, bcrypt.checkpw, password.encode(), hashed.encode())
