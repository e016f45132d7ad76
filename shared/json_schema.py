"""Types whose JSON Schema says exactly what the server accepts, so that what the
document allows is accepted and what it refuses is refused (schemathesis checks both)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, StrictInt


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# JSON has one number type, and JSON Schema's "integer" is any number without a
# fraction: 10.0 is the integer 10. 10.5, "10" and true stay refused. Constraints go
# before it, so that they reach the schema: Annotated[StrictInt, Field(ge=1), INTEGRAL].
INTEGRAL = BeforeValidator(_integral)
JsonInt = Annotated[StrictInt, INTEGRAL]


def not_null_fields(schema: dict[str, Any]) -> None:
    """json_schema_extra of a model none of whose fields may be sent as null."""
    for prop in schema.get("properties", {}).values():
        not_null(prop)


def not_null(schema: dict[str, Any]) -> None:
    """json_schema_extra of a field that may be left out but never sent as null (a PATCH
    body's): its schema is the value's, without the null that `X | None` adds."""
    variants = schema.pop("anyOf", None)
    if variants is None:
        return
    rest = [variant for variant in variants if variant != {"type": "null"}]
    schema.pop("default", None)
    if len(rest) == 1:
        schema.update(rest[0])
    else:
        schema["anyOf"] = rest
