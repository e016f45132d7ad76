from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.timefmt import iso_ms

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
