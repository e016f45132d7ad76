"""History pages kept as the bytes Postgres wrote, each with the room's newest
message id it was built at, and used only once Postgres has said that id is still
the room's newest (messages_store: the same statement that checks the membership).

Why that check is enough, so that a cached page is always exact, on every replica,
with no invalidation message:
- a room's history is append-only: a message is never updated or deleted, except
  every one of them with the room itself (ON DELETE CASCADE), and a deleted room's
  id is never used again (an identity column);
- a room's messages commit in the order of their ids: every INSERT INTO
  room_messages (store._SEND alone or under an Idempotency-Key's transaction,
  sends_store._SEND_MANY batched) locks the room's row FOR NO KEY UPDATE before the
  message takes its id, and holds it until its transaction commits, so the next
  message of that room takes its (greater) id only after the previous one committed.
So any snapshot sees, of a room's messages, exactly those up to its newest id: every
page of the room (newest first, `before=`, `after=`) is a function of that one id,
and a page built when the newest id was N is byte for byte the page of any later
snapshot whose newest id is N. An empty room (newest 0) is cached the same way.
tests/chat_service/test_history_cache.py fails if a send stops showing.

Bounded by the bytes it holds (HISTORY_CACHE_BYTES; 0 keeps nothing), least
recently used first out. Counted in /metrics: the pages served from it and built.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from chat_service.settings import ChatSettings
from shared.metrics import METRICS_KEY

# What an entry costs beyond its body (its key, tuple and the dict's slot), roughly,
# so that the bound holds for many small pages too.
ENTRY_OVERHEAD_BYTES = 200


@dataclass(frozen=True, slots=True)
class PageKey:
    """One page of one room: `forwards` for `after=`, else newest first below `bound`."""

    room_id: int
    forwards: bool
    bound: int
    limit: int


@dataclass(frozen=True, slots=True)
class CachedPage:
    newest: int  # the room's newest message id when it was built (0: none)
    body: bytes


class PageCache:
    """A least-recently-used map of pages, at most `max_bytes` of them (with their
    ENTRY_OVERHEAD_BYTES). Used on the event loop only: no locks."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._pages: OrderedDict[PageKey, CachedPage] = OrderedDict()
        # Read by PageCacheCollector at scrape time.
        self.served = 0
        self.built = 0

    def __len__(self) -> int:
        return len(self._pages)

    def get(self, key: PageKey) -> CachedPage | None:
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
        return page

    def put(self, key: PageKey, page: CachedPage) -> None:
        """Keeps `page` unless it is too big, or an entry built at a newer id is
        already there (two requests built it at once, the later one saw more)."""
        size = len(page.body) + ENTRY_OVERHEAD_BYTES
        if size > self.max_bytes:
            return
        old = self._pages.get(key)
        if old is not None:
            if old.newest > page.newest:
                return
            self.bytes -= len(old.body) + ENTRY_OVERHEAD_BYTES
        self._pages[key] = page
        self._pages.move_to_end(key)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, evicted = self._pages.popitem(last=False)
            self.bytes -= len(evicted.body) + ENTRY_OVERHEAD_BYTES


class PageCacheCollector(Collector):
    def __init__(self, cache: PageCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        pages = CounterMetricFamily(
            "chat_history_pages",
            "History pages answered: from the cache (checked still current) or built by Postgres",
            labels=["source"],
        )
        pages.add_metric(["cache"], self.cache.served)
        pages.add_metric(["built"], self.cache.built)
        yield pages
        yield GaugeMetricFamily(
            "chat_history_cache_entries", "Pages the history cache holds", value=len(self.cache)
        )
        yield GaugeMetricFamily(
            "chat_history_cache_bytes",
            "Bytes the history cache holds (bodies and a fixed cost per entry)",
            value=self.cache.bytes,
        )


HISTORY_CACHE_KEY = web.AppKey("history_cache", PageCache)


def add_history_cache(app: web.Application, settings: ChatSettings) -> None:
    """For the app factory, once the app has its metrics: the app's cache, counted."""
    app[HISTORY_CACHE_KEY] = cache = PageCache(settings.history_cache_bytes)
    app[METRICS_KEY].add_collector(PageCacheCollector(cache))
