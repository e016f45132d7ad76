"""shared.batching.Batcher: what concurrent requests submit in one turn of the loop
runs as one statement, each item gets its own outcome, and a statement Postgres
refuses runs item by item; against a real Postgres."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from shared.batching import BatchCollector, Batcher, Outcome
from shared.logs import request_id_var


class Odd(Exception):
    """A refusal of one item (run_many answers it for that item alone)."""


class Store:
    """A table whose CHECK refuses a value of 0 or less, and the two ways in."""

    def __init__(self, conn: asyncpg.Pool) -> None:
        self.conn = conn
        self.batches: list[list[int]] = []  # what each statement carried
        self.contexts: list[str | None] = []

    async def one(self, value: int) -> int:
        self.batches.append([value])
        if value % 2 and value > 100:
            raise Odd(value)
        row_id: int = await self.conn.fetchval(
            "INSERT INTO items (value) VALUES ($1) RETURNING id", value
        )
        return row_id

    async def many(self, values: Sequence[int]) -> list[Outcome[int]]:
        self.batches.append(list(values))
        self.contexts.append(request_id_var.get(None))
        kept = [v for v in values if not (v % 2 and v > 100)]
        ids = await self.conn.fetch(
            "INSERT INTO items (value) SELECT v FROM unnest($1::int[]) WITH ORDINALITY"
            " AS q(v, ord) ORDER BY ord RETURNING id",
            kept,
        )
        found = iter(row["id"] for row in ids)
        return [Odd(v) if v % 2 and v > 100 else next(found) for v in values]

    async def stored(self) -> list[int]:
        rows = await self.conn.fetch("SELECT value FROM items ORDER BY id")
        return [row["value"] for row in rows]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
        await pool.execute(
            "CREATE TABLE items (id serial PRIMARY KEY, value int CHECK (value > 0))"
        )
        yield Store(pool)


async def test_items_submitted_together_go_in_one_statement_each_with_its_answer(store):
    batcher = Batcher(store.one, store.many)
    ids = await asyncio.gather(*(batcher.submit(v) for v in (10, 20, 30, 40)))
    assert store.batches == [[10, 20, 30, 40]]
    assert await store.stored() == [10, 20, 30, 40]
    rows = await store.conn.fetch("SELECT id, value FROM items")
    stored = {row["value"]: row["id"] for row in rows}
    assert stored == dict(zip((10, 20, 30, 40), ids, strict=True))


async def test_an_item_alone_runs_by_itself_and_later_items_make_a_new_batch(store):
    batcher = Batcher(store.one, store.many)
    first = await batcher.submit(5)
    second = await asyncio.gather(batcher.submit(6), batcher.submit(7))
    assert store.batches == [[5], [6, 7]]
    assert first < second[0] < second[1]
    assert await store.stored() == [5, 6, 7]


async def test_a_refusal_of_one_item_reaches_its_request_alone(store):
    batcher = Batcher(store.one, store.many)
    outcomes = await asyncio.gather(
        *(batcher.submit(v) for v in (2, 101, 4)), return_exceptions=True
    )
    assert isinstance(outcomes[1], Odd) and outcomes[1].args == (101,)
    assert all(isinstance(o, int) for o in (outcomes[0], outcomes[2]))
    assert store.batches == [[2, 101, 4]]
    assert await store.stored() == [2, 4]


async def test_a_statement_postgres_refuses_runs_each_item_alone(store):
    batcher = Batcher(store.one, store.many)
    outcomes = await asyncio.gather(
        *(batcher.submit(v) for v in (1, 2, -3, 4)), return_exceptions=True
    )
    # The array statement failed as a whole (CHECK), wrote nothing; then one by one.
    assert isinstance(outcomes[2], asyncpg.CheckViolationError)
    assert [o for i, o in enumerate(outcomes) if i != 2] == [
        o for o in outcomes if isinstance(o, int)
    ]
    assert store.batches[0] == [1, 2, -3, 4]
    assert store.batches[1:] == [[1], [2], [-3], [4]]
    assert await store.stored() == [1, 2, 4]


async def test_a_lost_database_is_every_items_answer_and_nothing_is_retried(store):
    lost = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")

    async def many(values: Sequence[int]) -> list[Outcome[int]]:
        store.batches.append(list(values))
        raise lost

    batcher = Batcher(store.one, many)
    outcomes = await asyncio.gather(*(batcher.submit(v) for v in (1, 2, 3)), return_exceptions=True)
    # Each request its own copy, so that no traceback gathers the others' frames.
    assert len({id(o) for o in outcomes}) == 3
    for outcome in outcomes:
        assert type(outcome) is type(lost) and str(outcome) == "connection was closed"
        assert outcome.__cause__ is lost.__cause__
        frames = [frame.name for frame in traceback.extract_tb(outcome.__traceback__)]
        assert frames.count("submit") == 1
    assert store.batches == [[1, 2, 3]]  # run_one never ran
    assert await store.stored() == []


async def test_a_wrong_count_of_outcomes_fails_every_item(store):
    async def many(values: Sequence[int]) -> list[Outcome[int]]:
        return [1]

    batcher = Batcher(store.one, many)
    outcomes = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert str(outcomes[0]) == "1 outcomes for 2 items"


async def test_a_batch_holds_max_batch_items_at_most(store):
    batcher = Batcher(store.one, store.many, max_batch=3)
    ids = await asyncio.gather(*(batcher.submit(v) for v in range(1, 8)))
    assert sorted(store.batches) == [[1, 2, 3], [4, 5, 6], [7]]
    assert len(set(ids)) == 7
    assert sorted(await store.stored()) == list(range(1, 8))
    with pytest.raises(ValueError, match="two items at least"):
        Batcher(store.one, store.many, max_batch=1)


async def test_with_max_in_flight_what_arrives_meanwhile_waits_and_goes_together(store):
    """Group commit: while a statement runs, later turns' items wait for it to end,
    then go as one statement, not a statement each."""
    gate, started, running, most = asyncio.Event(), asyncio.Event(), [0], [0]

    async def many(values: Sequence[int]) -> list[Outcome[int]]:
        started.set()
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            await gate.wait()
            return await store.many(values)
        finally:
            running[0] -= 1

    batcher = Batcher(store.one, many, max_in_flight=1)
    first = [asyncio.ensure_future(batcher.submit(v)) for v in (1, 2)]
    await started.wait()  # the first statement is under way, held at the gate
    later = []
    for value in (3, 4, 5):  # each in a turn of its own
        later.append(asyncio.ensure_future(batcher.submit(value)))
        for _ in range(3):
            await asyncio.sleep(0)
    assert store.batches == []  # none of them started a statement of its own
    gate.set()
    ids = await asyncio.gather(*first, *later)
    assert store.batches == [[1, 2], [3, 4, 5]]
    assert most[0] == 1
    assert len(set(ids)) == 5
    assert await store.stored() == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="one statement runs at a time"):
        Batcher(store.one, store.many, max_in_flight=0)


async def test_a_cancelled_request_leaves_the_others_their_answers(store):
    batcher = Batcher(store.one, store.many)
    cancelled = asyncio.ensure_future(batcher.submit(1))
    others = [asyncio.ensure_future(batcher.submit(v)) for v in (2, 3)]
    await asyncio.sleep(0)  # each has submitted: the batch is due
    cancelled.cancel()
    assert all(isinstance(i, int) for i in await asyncio.gather(*others))
    assert cancelled.cancelled()
    # The statement had all three: a request that left after its batch was made
    # is written, as one that left after its statement was sent.
    await batcher.wait_idle()
    assert store.batches == [[1, 2, 3]]
    assert await store.stored() == [1, 2, 3]


async def test_a_batch_runs_outside_any_one_requests_log_context(store):
    batcher = Batcher(store.one, store.many)

    async def request(value: int) -> int:
        request_id_var.set(f"req-{value}")
        return await batcher.submit(value)

    await asyncio.gather(request(1), request(2))
    assert store.contexts == [None]


async def test_wait_idle_waits_for_the_batches_submitted(store):
    batcher = Batcher(store.one, store.many)
    waiters = [asyncio.ensure_future(batcher.submit(v)) for v in (1, 2)]
    await asyncio.sleep(0)
    await batcher.wait_idle()
    assert await store.stored() == [1, 2]
    assert all(w.done() for w in waiters)


async def test_the_collector_counts_batches_and_their_items(store):
    batcher = Batcher(store.one, store.many)
    await asyncio.gather(*(batcher.submit(v) for v in (1, 2, 3)))
    await batcher.submit(4)
    await asyncio.gather(*(batcher.submit(v) for v in (5, -6)), return_exceptions=True)
    registry = CollectorRegistry()
    registry.register(BatchCollector({"items": batcher}))
    text = generate_latest(registry).decode()
    # Two statements of several (3 items, then 2 refused as a whole and run alone).
    assert 'db_batches_total{batch="items"} 2.0' in text
    assert 'db_batched_items_total{batch="items"} 5.0' in text
    assert 'db_lone_items_total{batch="items"} 3.0' in text
