"""Reading a Prometheus text exposition the way Prometheus does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float | None:
        """The one sample of `name` whose labels include `labels`, or None."""
        found = [
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else None

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [s.labels for s in self.samples if s.name == name]


async def scrape(client: Any, path: str = "/metrics") -> Scrape:
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return Scrape(await response.text())


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 10) -> None:
    """Wait for a state another task reaches (a server handler's end), not for time."""
    async with asyncio.timeout(timeout_s):
        # The state is only seen through a scrape, so scrape until it shows.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
