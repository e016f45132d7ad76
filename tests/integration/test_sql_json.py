"""shared.sql_json: Postgres writes a model's JSON byte for byte as pydantic does."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import asyncpg
import pytest
from pydantic import BaseModel, ConfigDict, Field, field_serializer
from pydantic.alias_generators import to_camel

from shared.sql_json import Json, json_object_sql
from shared.timefmt import Timestamp, TimestampText, iso_ms_sql


class Person(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)

    display_name: str
    avatar_url: str | None


class Thing(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)

    thing_id: int
    text: str
    is_on: bool
    count: int | None
    kind: Literal["plain", "fancy"]
    owner: Person
    seen_at: TimestampText


THING_SQL = json_object_sql(
    Thing,
    {
        "thing_id": "thing_id",
        "text": "text",
        "is_on": "is_on",
        "count": "count",
        "kind": "kind",
        "owner": {"display_name": "display_name", "avatar_url": "avatar_url"},
        "seen_at": iso_ms_sql("seen_at"),
    },
)
THINGS = (
    f"SELECT convert_to({THING_SQL}, 'UTF8') AS body, {iso_ms_sql('seen_at')} AS seen_text"  # noqa: S608
    " FROM (VALUES ($1::bigint, $2::text, $3::boolean, $4::bigint, $5::text, $6::text,"
    " $7::text, $8::timestamptz))"
    " AS t(thing_id, text, is_on, count, kind, display_name, avatar_url, seen_at)"
)

# Every ASCII character but NUL (which Postgres' text cannot hold), one by one and
# together, and what else a JSON writer may escape or not.
TEXTS = [chr(c) for c in range(1, 128)] + [
    "".join(chr(c) for c in range(1, 128)),
    "",
    "é, 日本語, 😀, עברית",
    "\u2028\u2029\ufeff\u200b\x85\xa0",
    'quotes " \' and \\ backslashes \\" \\\\',
    "</script>",
    "x" * 5000,
]
INTS = [0, 1, -1, 2**31, -(2**63), 2**63 - 1]


async def test_postgres_writes_a_models_json_as_pydantic_does(db: asyncpg.Connection) -> None:
    moment = datetime.fromisoformat("2026-03-03T10:30:00.999999+00:00")
    cases = [(1, text, True, None, "plain", text, None, moment) for text in TEXTS] + [
        (number, "n", False, number, "fancy", "Ada", "https://x/a.png", moment) for number in INTS
    ]
    for case in cases:
        row = await db.fetchrow(THINGS, *case)
        thing_id, text, is_on, count, kind, name, avatar, _ = case
        model = Thing(
            thing_id=thing_id,
            text=text,
            is_on=is_on,
            count=count,
            kind=kind,
            owner=Person(display_name=name, avatar_url=avatar),
            seen_at=row["seen_text"],
        )
        assert row["body"] == model.__pydantic_serializer__.to_json(model, by_alias=True), case


async def test_timestamps_are_in_the_apis_form(db: asyncpg.Connection) -> None:
    """The text iso_ms_sql writes is what the Timestamp type writes for the same moment."""

    class Stamped(BaseModel):
        at: Timestamp

    for text in (
        "2026-03-03T10:30:00+00:00",
        "2026-03-03T10:30:00.000999+00:00",
        "2026-03-03T10:30:00.999999+00:00",
        "2026-12-31T23:59:59.123456-05:00",
        "1999-01-01T00:00:00.5+01:00",
    ):
        moment = datetime.fromisoformat(text)
        written = await db.fetchval(f"SELECT {iso_ms_sql('$1::timestamptz')}", moment)
        assert f'{{"at":"{written}"}}'.encode() == Stamped(at=moment).model_dump_json().encode()


def test_the_sql_must_name_exactly_the_models_fields() -> None:
    with pytest.raises(TypeError, match="missing \\['avatar_url'\\]"):
        json_object_sql(Person, {"display_name": "name"})
    with pytest.raises(TypeError, match="unknown \\['email'\\]"):
        json_object_sql(Person, {"display_name": "n", "avatar_url": "a", "email": "e"})


def test_types_postgres_would_write_differently_are_refused() -> None:
    class Measured(BaseModel):
        ratio: float

    class Dated(BaseModel):
        at: datetime

    class Stamped(BaseModel):
        at: Timestamp

    class Renamed(BaseModel):
        name: str

        @field_serializer("name")
        def upper(self, value: str) -> str:
            return value.upper()

    class Hidden(BaseModel):
        name: str
        secret: str = Field(exclude=True)

    with pytest.raises(TypeError, match="ratio"):
        json_object_sql(Measured, {"ratio": "ratio"})
    with pytest.raises(TypeError, match="at"):
        json_object_sql(Dated, {"at": "at"})
    with pytest.raises(TypeError, match="custom serialiser"):
        json_object_sql(Stamped, {"at": "at"})
    with pytest.raises(TypeError, match="custom serialisers"):
        json_object_sql(Renamed, {"name": "name"})
    with pytest.raises(TypeError, match="excluded"):
        json_object_sql(Hidden, {"name": "name", "secret": "secret"})
    with pytest.raises(TypeError, match="not a model"):
        json_object_sql(Person, {"display_name": {"x": "y"}, "avatar_url": "a"})
    # What the caller writes as JSON itself is its own to get right.
    assert "(to_json(at)::text)" in json_object_sql(Dated, {"at": Json("to_json(at)::text")})
