"""bcrypt, off the event loop and bounded: one hash costs tens of milliseconds of CPU.

At most `workers` hashes run at once (a thread pool of their own; bcrypt releases the
GIL), so with the default of one core less than the machine has, the event loop always
keeps a core for every other request. At most `queue` more wait their turn; a request
past that is refused at once with 503 and Retry-After rather than left to time out.

The hashing threads also run at a lower scheduling priority (`nice`, per thread on
Linux): when the cores are contended (the database, the other processes of the
machine), the scheduler serves the requests first and the hashes with what is left,
instead of splitting the cores evenly. A hash still gets every idle cycle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import bcrypt
from aiohttp import web
from pydantic import Field
from pydantic_settings import BaseSettings

from shared.errors import ApiError

log = logging.getLogger(__name__)

# bcrypt reads at most 72 bytes; the API refuses longer passwords instead of truncating.
MAX_PASSWORD_BYTES = 72
BUSY = "too many password checks in progress; retry shortly"
T = TypeVar("T")


class PasswordSettings(BaseSettings):
    """For the processes that hash passwords: the gateway (accounts), chat (private rooms)."""

    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    password_hash_workers: int = Field(default=max(1, (os.cpu_count() or 1) - 1), ge=1)
    password_hash_queue: int = Field(default=32, ge=0)
    password_hash_retry_after_s: int = Field(default=1, ge=1)
    # Added to the hashing threads' nice value (0 = same priority as the requests).
    password_hash_nice: int = Field(default=10, ge=0, le=19)


def lower_priority(nice: int) -> None:
    """In a hashing thread: on Linux a thread has a nice value of its own (setpriority(2),
    PRIO_PROCESS with the thread's id), so this leaves the event loop's thread as it is.
    Relative to the process's own value; a system that refuses leaves it unchanged."""
    if not nice:
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(
            os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + nice)
        )
    except OSError as exc:
        log.warning("password hashing keeps the requests' priority", extra={"error": repr(exc)})


class PasswordsBusy(ApiError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(503, BUSY, headers={"Retry-After": str(retry_after_s)})


class PasswordHasher:
    def __init__(
        self, *, rounds: int, workers: int, queue: int, retry_after_s: int, nice: int = 0
    ) -> None:
        self.rounds = rounds
        self.capacity = workers + queue
        self.retry_after_s = retry_after_s
        self.admitted = 0
        self._threads = ThreadPoolExecutor(
            workers, thread_name_prefix="bcrypt", initializer=lower_priority, initargs=(nice,)
        )

    def submit(self, work: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Runs `work` on the pool, or refuses it now when the pool and queue are full.
        A request that gives up frees its place (a hash already running finishes)."""
        self.refuse_when_full()
        self.admitted += 1
        future = asyncio.get_running_loop().run_in_executor(self._threads, work, *args)
        future.add_done_callback(self._release)
        return future

    def refuse_when_full(self) -> None:
        if self.admitted >= self.capacity:
            raise PasswordsBusy(self.retry_after_s)

    def _release(self, _: object) -> None:
        self.admitted -= 1

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self.rounds)
        hashed = await self.submit(bcrypt.hashpw, password.encode(), salt)
        return hashed.decode()

    async def verify(self, password: str, hashed: str) -> bool:
        """Whether `password` matches. No stored password is longer than bcrypt reads (they
        are refused when set), so a longer one is wrong; it still costs one check, so that
        its answer takes as long as any other wrong password's."""
        secret = password.encode()
        matches = await self.submit(
            # Looked up at call time, not bound at import: tests count the checks.
            lambda: bcrypt.checkpw(secret[:MAX_PASSWORD_BYTES], hashed.encode())
        )
        return matches and len(secret) <= MAX_PASSWORD_BYTES

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


PASSWORDS_KEY = web.AppKey("passwords", PasswordHasher)


def passwords_ctx(settings: PasswordSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        hasher = PasswordHasher(
            rounds=settings.bcrypt_rounds,
            workers=settings.password_hash_workers,
            queue=settings.password_hash_queue,
            retry_after_s=settings.password_hash_retry_after_s,
            nice=settings.password_hash_nice,
        )
        app[PASSWORDS_KEY] = hasher
        try:
            yield
        finally:
            hasher.close()

    return ctx
