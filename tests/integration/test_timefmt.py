import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.timefmt import iso_ms, iso_ms_sql

PLUS_2 = timezone(timedelta(hours=2))
PLUS_1 = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 3, 3, 10, 30, 0, 0, tzinfo=UTC), "2026-03-03T10:30:00.000Z"),
        (datetime(2026, 3, 3, 10, 30, 0, 999_999, tzinfo=UTC), "2026-03-03T10:30:00.999Z"),
        (datetime(2026, 3, 3, 10, 30, 0, 1_500, tzinfo=UTC), "2026-03-03T10:30:00.001Z"),
        (datetime(2026, 3, 3, 12, 30, tzinfo=PLUS_2), "2026-03-03T10:30:00.000Z"),
        (datetime(2026, 1, 1, 0, 30, tzinfo=PLUS_1), "2025-12-31T23:30:00.000Z"),
    ],
)
def test_iso_ms_is_utc_with_milliseconds(value, expected):
    assert iso_ms(value) == expected


async def test_the_database_writes_timestamps_as_iso_ms_does(db):
    moments = [
        datetime(2026, 3, 3, 10, 30, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 3, 10, 30, 0, 999_999, tzinfo=UTC),
        datetime(2026, 3, 3, 10, 30, 0, 1_500, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 30, tzinfo=PLUS_1),
        datetime(1999, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC),
    ]
    draw = random.Random(7)
    moments += [
        datetime.fromtimestamp(draw.uniform(0, 4e9), UTC).replace(microsecond=draw.randrange(10**6))
        for _ in range(2000)
    ]
    # Whatever the session's time zone: the column is converted to UTC.
    await db.execute("SET TimeZone = 'Asia/Kathmandu'")
    written = await db.fetch(
        f"SELECT {iso_ms_sql('t')} AS text FROM unnest($1::timestamptz[]) t",  # noqa: S608
        moments,
    )
    assert [row["text"] for row in written] == [iso_ms(moment) for moment in moments]
