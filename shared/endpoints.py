"""One decorator per handler: what it takes and answers (for the OpenAPI document),
and whether it needs a token (for the auth middleware)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

H = TypeVar("H", bound=Callable[..., Any])

ATTRIBUTE = "__endpoint__"


@dataclass(frozen=True)
class Endpoint:
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    public: bool = False
    guests: bool = True
    websocket: bool = False
    tags: tuple[str, ...] = ()
    hidden: bool = False
    path: type[BaseModel] | None = None
    database: bool = True
    idempotent: bool = False


def endpoint(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int, type[BaseModel] | None] | None = None,
    public: bool = False,
    guests: bool = True,
    websocket: bool = False,
    tags: tuple[str, ...] = (),
    hidden: bool = False,
    path: type[BaseModel] | None = None,
    database: bool = True,
    idempotent: bool = False,
) -> Callable[[H], H]:
    """`hidden` keeps a route out of the OpenAPI document (the gateway's proxy routes).
    `path` types the path's parameters; `database=False` says the handler needs no
    database, so it never answers 503 when Postgres is away. `idempotent` says it
    honours an `Idempotency-Key` (shared.idempotency.once)."""
    spec = Endpoint(
        summary,
        body=body,
        query=query,
        responses=responses or {},
        public=public,
        guests=guests,
        websocket=websocket,
        tags=tags,
        hidden=hidden,
        path=path,
        database=database,
        idempotent=idempotent,
    )

    def mark(handler: H) -> H:
        setattr(handler, ATTRIBUTE, spec)
        return handler

    return mark


def endpoint_of(handler: Any) -> Endpoint | None:
    spec = getattr(handler, ATTRIBUTE, None)
    return spec if isinstance(spec, Endpoint) else None
