"""A response model's JSON written by Postgres, byte for byte as pydantic writes it.

A read that only passes rows on (a page of 50 messages, a room by its code) costs
the service more in decoding the rows, validating them into models and serialising
those than in everything else it does. `json_object_sql(Model, values)` is the SQL
expression of the text `Model.__pydantic_serializer__.to_json(m, by_alias=True)`
gives for the same values: the model's fields in their order, under their
serialisation aliases, no spaces, each value through Postgres' `to_json` (whose
string escapes are serde's: `\\"`, `\\\\`, `\\b\\f\\n\\r\\t`, `\\u00XX` for the other
control characters, the rest as UTF-8) and `null` for NULL. So the model stays the
one source of the shape: its fields decide the keys and their order, and building
the SQL checks, at import, that the values name exactly its fields and that each
field is of a type whose JSON `to_json` writes as pydantic does (str, int, bool,
None, a nested model of those). Anything else (floats, datetimes, custom
serialisers) is refused: give Postgres' text in the API's form instead (a
`TimestampText` from `shared.timefmt.iso_ms_sql`), or a `Json` expression.
Tests compare the SQL's JSON with the model's for the same rows.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class Json:
    """An SQL expression that is already the field's JSON text (never NULL)."""

    sql: str


Value = Union[str, Json, "Mapping[str, Value]"]

# Types whose JSON Postgres' to_json writes exactly as pydantic does.
_SCALARS = (str, int, bool, type(None))


def json_object_sql(model: type[BaseModel], values: Mapping[str, Value]) -> str:
    """The SQL (a text expression) of `model`'s JSON, by alias, from each field's
    SQL value: a plain SQL expression (its value through `to_json`), a `Json`
    expression, or for a nested model a mapping of its own fields' values."""
    fields = model.model_fields
    if set(values) != set(fields):
        missing, unknown = set(fields) - set(values), set(values) - set(fields)
        raise TypeError(
            f"{model.__name__}: SQL values must name its fields"
            f" (missing {sorted(missing)}, unknown {sorted(unknown)})"
        )
    if model.__pydantic_decorators__.field_serializers or (
        model.__pydantic_decorators__.model_serializers
    ):
        raise TypeError(f"{model.__name__}: custom serialisers are not written by SQL")
    parts = []
    for index, (name, field) in enumerate(fields.items()):
        if field.exclude:
            raise TypeError(f"{model.__name__}.{name}: an excluded field is not written by SQL")
        key = field.serialization_alias or field.alias or name
        prefix = ("{" if index == 0 else ",") + json.dumps(key, ensure_ascii=False) + ":"
        parts.append(_literal(prefix))
        parts.append(_value_sql(model, name, field, values[name]))
    return "(" + " || ".join(parts) + " || '}')"


def _value_sql(model: type[BaseModel], name: str, field: FieldInfo, value: Value) -> str:
    if isinstance(value, Json):
        return f"({value.sql})"
    if isinstance(value, Mapping):
        nested = field.annotation
        if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
            raise TypeError(f"{model.__name__}.{name}: not a model, give it an SQL value")
        return json_object_sql(nested, value)
    if field.metadata and any(_serialises(item) for item in field.metadata):
        raise TypeError(f"{model.__name__}.{name}: custom serialiser, give a Json expression")
    if not _plain(field.annotation):
        raise TypeError(
            f"{model.__name__}.{name}: {field.annotation!r} is not written by to_json"
            " as pydantic writes it; give a Json expression"
        )
    return f"coalesce(to_json({value})::text, 'null')"


def _plain(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return all(_plain(arg) for arg in get_args(annotation))
    if origin is Literal:
        return all(isinstance(arg, str) for arg in get_args(annotation))
    # bool is an int; float and enums are not plain (their text differs).
    return isinstance(annotation, type) and annotation in _SCALARS


def _serialises(item: Any) -> bool:
    return type(item).__name__ in ("PlainSerializer", "WrapSerializer")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
