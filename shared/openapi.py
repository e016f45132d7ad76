"""OpenAPI 3.1 built from the same pydantic models that validate requests."""

from __future__ import annotations

from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel

from shared import idempotency
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


def package_version() -> str:
    try:
        return version("rooms-platform")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


def _error(description: str, error_ref: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": error_ref}}}


# Answers any operation may give beyond its own, and why.
BODY_TOO_LARGE = "request body too large"
DATABASE_AWAY = "the database is out of reach; retry after Retry-After seconds"

IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "description": (
        "A retry with the same key, user and body within 24 hours gets the first"
        " answer again (with `Idempotent-Replayed: true`) and changes nothing."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
}
REPLAYED_HEADER = {
    idempotency.REPLAYED_HEADER: {
        "description": "`true` when this is the first answer to the same Idempotency-Key again",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def build_openapi(app: web.Application, title: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    error_ref = _schema(ErrorBody, "serialization", components)
    operation_ids: set[str] = set()
    for route in app.router.routes():
        spec = endpoint_of(route.handler)
        if spec is None or spec.hidden or route.method == "HEAD" or route.resource is None:
            continue
        operation_id = getattr(route.handler, "__name__", "")
        if not operation_id or operation_id in operation_ids:
            raise ValueError(f"two operations are called {operation_id!r}: rename a handler")
        operation_ids.add(operation_id)
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": spec.summary,
            "responses": {},
        }
        if spec.tags:
            operation["tags"] = list(spec.tags)
        if not spec.public:
            operation["security"] = [{"bearer": []}]
        if spec.body is not None:
            ref = _schema(spec.body, "validation", components)
            # Required when the model has required fields: an empty body reads as {}.
            operation["requestBody"] = {
                "required": bool(components[spec.body.__name__].get("required")),
                "content": {"application/json": {"schema": ref}},
            }
        parameters = _path_parameters(route.resource.canonical, spec.path)
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
        if spec.idempotent:
            parameters.append(IDEMPOTENCY_KEY_PARAMETER)
        if parameters:
            operation["parameters"] = parameters
        responses = operation["responses"]
        for status, model in sorted(spec.responses.items()):
            response: dict[str, Any] = {"description": HTTPStatus(status).phrase}
            if model is not None:
                ref = _schema(model, "serialization", components)
                response["content"] = {"application/json": {"schema": ref}}
            elif status >= 400:
                response["content"] = {"application/json": {"schema": error_ref}}
            responses[str(status)] = response
        if not spec.public and "401" not in responses:
            responses["401"] = _error("missing or invalid token", error_ref)
        if spec.websocket and "400" not in responses:
            responses["400"] = _error("not a WebSocket upgrade request", error_ref)
        if spec.body is not None and "413" not in responses:
            responses["413"] = _error(BODY_TOO_LARGE, error_ref)
        if spec.idempotent:
            for status, response in responses.items():
                if status.startswith("2"):
                    response["headers"] = REPLAYED_HEADER
            responses.setdefault("400", _error(idempotency.INVALID_KEY, error_ref))
            responses["422"] = _error(idempotency.KEY_REUSED, error_ref)
        if spec.database and "503" not in responses:
            responses["503"] = _error(DATABASE_AWAY, error_ref)
        if not any(status.startswith("2") for status in responses):
            responses["200"] = {"description": "OK"}
        operation["responses"] = dict(sorted(responses.items()))
        if spec.websocket:
            operation["description"] = (
                "A WebSocket endpoint: connect with an Upgrade request. A plain request"
                " is answered 426 with `Upgrade: websocket`."
            )
            if "426" not in responses:
                responses["426"] = _error("not a WebSocket upgrade request", error_ref)
                operation["responses"] = dict(sorted(responses.items()))
        paths.setdefault(route.resource.canonical, {})[route.method.lower()] = operation
    for name, schema in components.items():
        schema["title"] = name  # generated clients name their models by title
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": package_version()},
        # Relative: the API is where this document was fetched from.
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _path_parameters(path: str, model: type[BaseModel] | None) -> list[dict[str, Any]]:
    """Each {name} of the path, typed by `model` when the endpoint gives one."""
    properties = {}
    if model is not None:
        properties = model.model_json_schema(by_alias=True, ref_template=REF)["properties"]
    parameters = []
    for name in _path_params(path):
        schema = dict(properties.get(name, {"type": "string"}))
        schema.pop("title", None)
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


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

    @endpoint(
        "The OpenAPI document of this process", public=True, tags=("operations",), database=False
    )
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
