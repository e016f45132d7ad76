"""Concurrent requests' statements, sent to Postgres together.

Under load, many requests ask the database the same kind of thing at once (a room
by its code, a message to store). Each statement alone costs a round trip, a
connection from the pool, and Postgres' per-statement work (parse, plan, executor,
commit), which is most of what the statement costs. A `Batcher` collects the items
submitted during one turn of the event loop and runs them as one statement that
takes arrays (`run_many`), or by the usual one-item statement (`run_one`) when an
item is alone, as it is whenever the service is not busy: at low load nothing
changes and nothing waits, since the batch leaves at the end of the turn its first
item arrived in. Under load the batches grow by themselves (the DataLoader pattern,
and a database's group commit): while every connection is busy, what arrives waits
for one, and goes with the others that arrived meanwhile.

Every item gets its own answer: a result, or the exception its request raises
(a refusal for that item alone). A statement failing as a whole is one of two
things. Postgres refused it (an error of the statement: nothing was written, and
one item may be the cause, say a value a constraint refuses): each item then runs
alone, one after the other in the order submitted, so the others succeed and only
the culprit fails, as it would have alone. Anything else (the database out of
reach, a timeout, a bug) is every item's answer, as each would have met it alone:
nothing that may have been written is run again.

A write batch is one statement, so one transaction: all of it commits, or none.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeAlias, TypeVar

import asyncpg
from aiohttp import web
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from shared.errors import database_lost
from shared.metrics import METRICS_KEY

T = TypeVar("T")
R = TypeVar("R")

# The items of one statement at most; more wait for the next.
MAX_BATCH = 64

# What run_many answers for one item: its result, or the exception its request raises.
Outcome: TypeAlias = R | BaseException


def refused_by_postgres(exc: BaseException) -> bool:
    """Postgres refused the statement (it ran, and rolled back), rather than the
    database being out of reach: its items may each run alone."""
    return isinstance(exc, asyncpg.PostgresError) and not database_lost(exc)


class Batcher(Generic[T, R]):
    """Items submitted in one turn of the loop, run together (`submit`)."""

    def __init__(
        self,
        run_one: Callable[[T], Awaitable[R]],
        run_many: Callable[[Sequence[T]], Awaitable[Sequence[Outcome[R]]]],
        *,
        max_batch: int = MAX_BATCH,
        max_in_flight: int | None = None,
    ) -> None:
        if max_batch < 2:
            raise ValueError("a batch holds two items at least")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("at least one statement runs at a time")
        self.run_one = run_one
        self.run_many = run_many
        self.max_batch = max_batch
        # Statements running at once at most: what arrives meanwhile waits and goes
        # with the next (group commit). None: a statement per turn of the loop.
        self.max_in_flight = max_in_flight
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flush_due = False
        self._running: set[asyncio.Task[None]] = set()
        # Read by BatchCollector at scrape time: statements of several items, the
        # items they carried, and the items that ran alone.
        self.batches = 0
        self.batched_items = 0
        self.lone_items = 0

    async def submit(self, item: T) -> R:
        """The item's result, run with the others submitted in this turn of the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        self._schedule_flush(loop)
        return await future

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._flush_due:
            # After the callbacks already due in this turn: the requests that arrived
            # with this one submit theirs first. A context of its own, so a batch's
            # logs do not carry one request's id.
            self._flush_due = True
            loop.call_soon(self._flush, context=contextvars.Context())

    def _flush(self) -> None:
        self._flush_due = False
        loop = asyncio.get_running_loop()
        limit = self.max_in_flight
        while self._pending and (limit is None or len(self._running) < limit):
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            task = loop.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._ran)

    def _ran(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._pending:  # held back while max_in_flight statements ran
            self._schedule_flush(task.get_loop())

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            if len(batch) == 1:
                await self._alone(*batch[0])
                return
            self.batches += 1
            self.batched_items += len(batch)
            try:
                outcomes = await self.run_many([item for item, _ in batch])
            except Exception as exc:
                if not refused_by_postgres(exc):
                    raise
                # Nothing was written: each alone, in order, so only the culprit fails.
                for item, future in batch:
                    await self._alone(item, future)
                return
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} items")
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                _settle(future, outcome)
        except BaseException as exc:
            for _, future in batch:
                _settle(future, _own_copy(exc))
            if not isinstance(exc, Exception):
                raise

    async def _alone(self, item: T, future: asyncio.Future[R]) -> None:
        self.lone_items += 1
        try:
            outcome: Outcome[R] = await self.run_one(item)
        except Exception as exc:
            outcome = exc
        _settle(future, outcome)

    async def wait_idle(self) -> None:
        """Until every batch submitted so far has run (for a clean shutdown and tests)."""
        while self._pending or self._running:
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            else:
                await asyncio.sleep(0)


def _own_copy(exc: BaseException) -> BaseException:
    """One request's copy of an error of its whole batch: each request raises its own,
    so its traceback gets that request's frames only, not every request's in turn."""
    try:
        copied = copy.copy(exc)
    except Exception:  # an exception that cannot be rebuilt from its args
        return exc
    copied.__cause__, copied.__context__ = exc.__cause__, exc.__context__
    return copied.with_traceback(exc.__traceback__)


def _settle(future: asyncio.Future[R], outcome: Outcome[R]) -> None:
    if future.done():  # its request was cancelled: the outcome reaches no one
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class BatchCollector(Collector):
    """The batchers' counts, by name: their mean batch is items ÷ batches."""

    def __init__(self, batchers: Mapping[str, Batcher[Any, Any]]) -> None:
        self.batchers = batchers

    def collect(self) -> Iterator[CounterMetricFamily]:
        families = (
            ("db_batches", "Statements run for several requests' items at once", "batches"),
            ("db_batched_items", "Items run in a statement of several", "batched_items"),
            ("db_lone_items", "Items run alone (no company, or a refused batch)", "lone_items"),
        )
        for name, documentation, attribute in families:
            family = CounterMetricFamily(name, documentation, labels=["batch"])
            for batch, batcher in sorted(self.batchers.items()):
                family.add_metric([batch], getattr(batcher, attribute))
            yield family


@contextlib.asynccontextmanager
async def serving(
    app: web.Application, batchers: Mapping[str, Batcher[Any, Any]]
) -> AsyncIterator[None]:
    """For an app's cleanup context, made after the pool's: the batchers counted in
    its /metrics while it serves, and at cleanup every batch under way finished
    while the pool is still open."""
    app[METRICS_KEY].add_collector(BatchCollector(batchers))
    try:
        yield
    finally:
        await asyncio.gather(*(batcher.wait_idle() for batcher in batchers.values()))
