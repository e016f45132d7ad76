"""OpenAPI 3.1 built from the same pydantic models that validate requests."""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel

from shared.docs_page import add_docs_routes
from shared.endpoints import endpoint, endpoint_of

REF = "#/components/schemas/{model}"


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    code: str
    details: list[FieldError] | None = None


def _schema(model: type[BaseModel], mode: str, components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template=REF, mode=mode)  # type: ignore[arg-type]
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def build_openapi(app: web.Application, title: str, version: str = "1.0.0") -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    error_ref = _schema(ErrorBody, "serialization", components)
    for route in app.router.routes():
        spec = endpoint_of(route.handler)
        if spec is None or spec.hidden or route.method == "HEAD" or route.resource is None:
            continue
        operation: dict[str, Any] = {"summary": spec.summary, "responses": {}}
        if spec.tags:
            operation["tags"] = list(spec.tags)
        if not spec.public:
            operation["security"] = [{"bearer": []}]
        if spec.body is not None:
            operation["requestBody"] = {
                "required": False,
                "content": {
                    "application/json": {"schema": _schema(spec.body, "validation", components)}
                },
            }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(route.resource.canonical)
        ]
        if spec.query is not None:
            query_schema = spec.query.model_json_schema(by_alias=True, ref_template=REF)
            for name, prop in query_schema.get("properties", {}).items():
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in query_schema.get("required", []),
                        "schema": prop,
                    }
                )
        if parameters:
            operation["parameters"] = parameters
        for status, model in sorted(spec.responses.items()):
            response: dict[str, Any] = {"description": str(status)}
            if model is not None:
                ref = _schema(model, "serialization", components)
                response["content"] = {"application/json": {"schema": ref}}
            elif status >= 400:
                response["content"] = {"application/json": {"schema": error_ref}}
            operation["responses"][str(status)] = response
        if not spec.public and "401" not in operation["responses"]:
            operation["responses"]["401"] = {
                "description": "missing or invalid token",
                "content": {"application/json": {"schema": error_ref}},
            }
        if not any(status.startswith("2") for status in operation["responses"]):
            operation["responses"]["200"] = {"description": "OK"}
        if spec.websocket:
            operation["description"] = "A WebSocket endpoint: connect with an Upgrade request."
        paths.setdefault(route.resource.canonical, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


OPENAPI_KEY = web.AppKey("openapi", dict)
Document = dict[str, Any]


class DocumentExtender(Protocol):
    """The gateway's hook: the document clients see, from this process's own."""

    async def __call__(self, app: web.Application, own: Document) -> Document: ...


OPENAPI_EXTEND_KEY = web.AppKey("openapi_extend", DocumentExtender)


def add_openapi_routes(app: web.Application, title: str) -> None:
    """/openapi.json and /docs; the document is built once the routes are frozen."""

    @endpoint("The OpenAPI document of this process", public=True, tags=("operations",))
    async def openapi_json(request: web.Request) -> web.Response:
        document = request.app[OPENAPI_KEY]
        extend = request.app.get(OPENAPI_EXTEND_KEY)
        if extend is not None:
            document = await extend(request.app, document)
        return web.json_response(document)

    async def build(app: web.Application) -> None:
        app[OPENAPI_KEY].update(build_openapi(app, title))

    app[OPENAPI_KEY] = {}
    app.router.add_get("/openapi.json", openapi_json)
    add_docs_routes(app, title)
    app.on_startup.append(build)


def merge_documents(own: Document, others: dict[str, Document]) -> Document:
    """`own` plus the API operations of `others`, whose component names get the
    other's name as a prefix so that two services' `Room` never collide."""
    merged: Document = json.loads(json.dumps(own))
    for prefix, other in others.items():
        names = other.get("components", {}).get("schemas", {})
        text = json.dumps(other)
        for name in sorted(names, key=len, reverse=True):
            text = text.replace(
                f'"{REF.format(model=name)}"', f'"{REF.format(model=prefix + name)}"'
            )
        renamed = json.loads(text)
        for name, schema in renamed.get("components", {}).get("schemas", {}).items():
            merged["components"]["schemas"][prefix + name] = schema
        for path, item in renamed.get("paths", {}).items():
            if path not in merged["paths"]:
                merged["paths"][path] = item
    merged["paths"] = dict(sorted(merged["paths"].items()))
    return merged
