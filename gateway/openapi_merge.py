"""One OpenAPI document out of the gateway's and the services': clients see only the
gateway. A service's schemas get its name as a prefix (ChatRoom, MeetingRoom), except
those that are the gateway's own exactly (ErrorBody); titles follow names, so generated
clients get one model per schema and none is dropped."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from shared.openapi import REF, Document

_REF = re.compile(r'"#/components/schemas/([^"]+)"')


def _refs(value: Any) -> set[str]:
    return set(_REF.findall(json.dumps(value)))


def _reachable(document: Document) -> set[str]:
    """The schemas the document's operations use, directly or through other schemas."""
    schemas = document.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    todo = _refs(document.get("paths", {}))
    while todo:
        name = todo.pop()
        if name not in seen and name in schemas:
            seen.add(name)
            todo |= _refs(schemas[name])
    return seen


def _identical(theirs: dict[str, Any], ours: dict[str, Any]) -> set[str]:
    """Their schemas that are ours exactly (ErrorBody, FieldError): one model, not two."""
    same = {name for name, schema in theirs.items() if ours.get(name) == schema}
    changed = True
    while changed:  # a schema is the same only if the schemas it names are too
        kept = {name for name in same if _refs(theirs[name]) & set(theirs) <= same}
        changed = kept != same
        same = kept
    return same


def _upstream_errors(service: str, error_ref: dict[str, str]) -> dict[str, Any]:
    content = {"application/json": {"schema": error_ref}}
    return {
        "502": {"description": f"the {service} service is unavailable", "content": content},
        "504": {"description": f"the {service} service timed out", "content": content},
    }


def merge_documents(own: Document, others: dict[str, Document]) -> Document:
    """`own` plus the operations of `others` (prefix -> document); an operation's id
    gets the prefix (chat_create_room), and what the relay adds (502, 504) is documented."""
    merged: Document = copy.deepcopy(own)
    schemas = merged["components"]["schemas"]
    error_ref = {"$ref": REF.format(model="ErrorBody")}
    for prefix, other in others.items():
        reachable = _reachable(other)
        theirs = {
            name: schema
            for name, schema in other.get("components", {}).get("schemas", {}).items()
            if name in reachable
        }
        same = _identical(theirs, schemas)
        renames = {name: name if name in same else prefix + name for name in theirs}
        text = json.dumps({"paths": other.get("paths", {}), "schemas": theirs})
        for name in sorted(renames, key=len, reverse=True):
            if name not in same:
                text = text.replace(
                    f'"{REF.format(model=name)}"', f'"{REF.format(model=renames[name])}"'
                )
        renamed = json.loads(text)
        for name, schema in renamed["schemas"].items():
            if name not in same:
                schemas[renames[name]] = {**schema, "title": renames[name]}
        for path, item in renamed["paths"].items():
            if path in merged["paths"]:
                continue
            for operation in item.values():
                operation["operationId"] = f"{prefix.lower()}_{operation['operationId']}"
                responses = {
                    **_upstream_errors(prefix.lower(), error_ref),
                    **operation["responses"],
                }
                operation["responses"] = dict(sorted(responses.items()))
            merged["paths"][path] = item
    merged["paths"] = dict(sorted(merged["paths"].items()))
    merged["components"]["schemas"] = dict(sorted(schemas.items()))
    return merged
