"""Reading request bodies and answering with pydantic models."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from shared.errors import ApiError

M = TypeVar("M", bound=BaseModel)

INVALID_BODY = "request body must be a JSON object"


async def read_json_object(request: web.Request, *, invalid: str = INVALID_BODY) -> dict[str, Any]:
    """The body as a JSON object; an empty body is an empty object, while whitespace
    alone is not JSON and is refused like any other non-JSON body.

    Over the size limit aiohttp raises 413, which the error middleware answers.
    """
    return json_object(await request.read(), invalid=invalid)


def json_object(raw: bytes, *, invalid: str = INVALID_BODY) -> dict[str, Any]:
    """`read_json_object` of bytes already read."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        # RecursionError: nesting deep enough to exhaust the decoder, e.g. b"[" * 100_000.
        raise ApiError(400, invalid) from None
    if not isinstance(data, dict):
        raise ApiError(400, invalid)
    return data


def parsed(model: type[M], raw: bytes) -> M | None:
    """`model` straight from the body's bytes, in one call (pydantic's JSON parser),
    when they are a valid one; None for anything else, whatever the reason (not JSON,
    not an object, an invalid field, an empty body, nesting too deep for the parser,
    a byte order mark): the caller then takes the two steps, `json_object` and its
    validation, whose refusals (and rare acceptances, such as UTF-16 JSON) are the
    API's. What this accepts the two steps accept, with the same values
    (tests/test_bodies.py)."""
    if not raw:
        return None
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        return None


async def read_body(request: web.Request, model: type[M], *, message: str | None = None) -> M:
    """`validate(model, await read_json_object(request), message=message)`, parsed in
    one call when the body is valid."""
    return body_of(model, await request.read(), message=message)


def body_of(model: type[M], raw: bytes, *, message: str | None = None) -> M:
    """`read_body` of bytes already read (a service's edge: shared.service_edge)."""
    body = parsed(model, raw)
    if body is not None:
        return body
    return validate(model, json_object(raw), message=message)


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        details.append({"field": field, "message": error["msg"]})
    return details


def validate(model: type[M], data: Any, *, message: str | None = None) -> M:
    """Validate into `model`; a 400 that names each failing field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = field_errors(exc)
        summary = message or "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise ApiError(400, summary, details=details) from None


def validate_query(model: type[M], request: web.Request, *, message: str | None = None) -> M:
    return validate(model, dict(request.query), message=message)


def json_model(model: BaseModel, status: int = 200) -> web.Response:
    # The serializer's bytes as they are (model_dump_json would decode them to a str,
    # for the response to encode again).
    return json_body(model.__pydantic_serializer__.to_json(model, by_alias=True), status)


def json_body(body: bytes, status: int = 200) -> web.Response:
    """JSON already written as a model writes it: by pydantic, or by Postgres from
    the model's fields (shared.sql_json)."""
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")
