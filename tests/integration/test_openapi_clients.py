"""The OpenAPI documents are good enough to generate clients from: openapi-python-client
turns each process's document, and the gateway's merged one, into a Python client with
no warning (a warning means a schema or a response it had to drop)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from gateway.api_docs import OPERATIONAL
from tests.integration.test_openapi import _documents

GENERATOR = Path(sys.executable).parent / "openapi-python-client"


def generate(document: dict, where: Path) -> tuple[str, Path]:
    where.mkdir()
    (where / "openapi.json").write_text(json.dumps(document))
    # No post hooks: the client is generated to be read here, not formatted.
    (where / "config.json").write_text(json.dumps({"post_hooks": []}))
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(where / "openapi.json"),
            "--config",
            str(where / "config.json"),
            "--output-path",
            str(where / "client"),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output, where / "client"


@pytest.fixture
async def documents(gateway_stack, aiohttp_client):
    clients = await _documents(gateway_stack, aiohttp_client)
    return {name: await (await c.get("/openapi.json")).json() for name, c in clients.items()}


async def test_each_document_generates_a_client_without_a_warning(documents, tmp_path):
    for name, document in documents.items():
        output, client = generate(document, tmp_path / name)
        assert "Warning" not in output and "WARNING" not in output, (name, output)
        operations = {
            operation["operationId"]
            for item in document["paths"].values()
            for operation in item.values()
        }
        generated = {path.stem for path in (client / "api").rglob("*.py")} - {"__init__"}
        assert operations <= generated, (name, operations - generated)


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


NO_DATABASE = {
    "/healthz",
    "/version",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/.well-known/jwks.json",
}


async def test_every_operation_is_named_typed_and_documents_its_failures(documents):
    gateway = documents["gateway"]
    for name, document in documents.items():
        assert document["info"]["version"] == version("rooms-platform"), name
        assert document["servers"] == [{"url": "/"}], name
        schemas = document["components"]["schemas"]
        assert all(schema["title"] == key for key, schema in schemas.items()), name
        ids = [op["operationId"] for _, _, op in operations(document)]
        assert len(ids) == len(set(ids)), name
        for path, method, operation in operations(document):
            where = (name, method, path)
            responses = operation["responses"]
            body = operation.get("requestBody")
            if body is not None:
                ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                assert body["required"] is bool(schemas[ref].get("required")), where
                assert "413" in responses, where
            if path not in NO_DATABASE:
                assert "503" in responses, where
            for parameter in operation.get("parameters", []):
                chat = path.startswith("/api/")  # the meeting service's ids are text
                if chat and parameter["in"] == "path" and parameter["name"] == "room_id":
                    assert parameter["schema"]["type"] == "integer", where
    # Through the gateway: what the relay adds to every service operation.
    own = {path for path, _, _ in operations(documents["chat"])} | {
        path for path, _, _ in operations(documents["meeting"])
    }
    relayed = [(p, m, op) for p, m, op in operations(gateway) if p in own and p not in OPERATIONAL]
    assert len(relayed) > 20
    for path, method, operation in relayed:
        assert {"502", "504"} <= set(operation["responses"]), (method, path)
        assert operation["operationId"].startswith(("chat_", "meeting_")), (method, path)
    for path in ("/auth/login", "/auth/register", "/auth/guest"):
        assert "429" in gateway["paths"][path]["post"]["responses"], path
    create = gateway["paths"]["/api/create_room"]["post"]
    assert create["requestBody"]["required"] is True
    assert gateway["paths"]["/rooms"]["post"]["requestBody"]["required"] is False
    members = gateway["paths"]["/api/room_members/{room_id}"]["get"]["parameters"]
    assert members[0]["schema"]["type"] == "integer"
    assert len(gateway["components"]["schemas"]) == len(
        {schema["title"] for schema in gateway["components"]["schemas"].values()}
    )


# API.md: the operations that honour an Idempotency-Key, and only those.
IDEMPOTENT = {
    "chat": {("post", "/api/create_room"), ("post", "/api/send_room_message")},
    "meeting": {("post", "/rooms"), ("post", "/rooms/{room_id}/messages")},
}


async def test_idempotency_key_is_documented_where_it_is_honoured(documents):
    everywhere = {**IDEMPOTENT, "gateway": IDEMPOTENT["chat"] | IDEMPOTENT["meeting"]}
    for name, expected in everywhere.items():
        found = set()
        for path, method, operation in operations(documents[name]):
            headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
            if not headers:
                assert "422" not in operation["responses"], (name, method, path)
                continue
            found.add((method, path))
            [key] = headers
            assert (key["name"], key["required"]) == ("Idempotency-Key", False)
            assert key["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
            assert "24 hours" in key["description"]
            responses = operation["responses"]
            reused = responses["422"]["content"]["application/json"]["schema"]["$ref"]
            assert reused.endswith("/ErrorBody"), (name, path)
            assert responses["422"]["description"] == (
                "idempotency key reused with a different request"
            )
            assert "400" in responses
            created = responses["201"]
            assert created["headers"]["Idempotent-Replayed"]["schema"] == {
                "type": "string",
                "enum": ["true"],
            }
        assert found == expected, name
