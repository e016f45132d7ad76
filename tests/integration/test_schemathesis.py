"""Schemathesis against live processes: requests generated from each OpenAPI document,
valid and invalid, and every answer checked against the document (status codes, content
types, response schemas, headers), that what the schema allows is accepted and what it
refuses is refused, and that nothing is a 500. Bounded in examples per operation."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import Stack

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).with_name("schemathesis.toml")
ROOT = Path(__file__).resolve().parents[2]


async def schemathesis(base_url: str, token: str, tmp_path: Path, *extra: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        # Every user may read what the chat and meeting rules let them: the tool's
        # guess that a second user must not is not this API's contract.
        "object_level_authorization",
        "--max-examples",
        "8",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "1",
        "--workers",
        "1",
        "--no-color",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        # WebSockets are not HTTP requests it can make; their own tests cover them.
        "--exclude-path-regex",
        "/ws$",
        "-H",
        f"Authorization: Bearer {token}",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
        },
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    return text


@pytest.mark.timeout(300)
@pytest.mark.parametrize("process", ["chat", "meeting"])
async def test_schemathesis_finds_nothing(process, gateway_stack: Stack, make_token, tmp_path):
    server = gateway_stack.chat if process == "chat" else gateway_stack.meeting
    await schemathesis(str(server.make_url("")).rstrip("/"), make_token("alice"), tmp_path)
