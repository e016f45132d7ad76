"""Every error message the code base can answer with has a machine code in the one table
(shared/error_codes.py), and docs/errors.md is that table.

The messages are found by reading the source: every `ApiError(status, message)` and
`error_response(status, message)`, with the message followed back to where it is written
(a literal, an f-string, a module constant or dict, a parameter's default and the values its
callers pass, a helper's return value). The few places that pass on a message made elsewhere
are listed in PASSED_ON with where that message comes from, and checked there."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

from meeting_service.refusals import Refusal
from shared.error_codes import CODES, INVALID_FIELDS, code_of, render

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "gateway", "chat_service", "meeting_service")
RAISERS = {"ApiError": 1, "error_response": 1}

# file, source of the message expression -> the messages it can carry.
PASSED_ON: dict[tuple[str, str], list[str]] = {
    # The middleware answers an ApiError raised elsewhere: those raise sites are checked.
    ("shared/errors.py", "exc.message"): [],
    # The meeting store's refusals, mapped to statuses by one middleware.
    ("meeting_service/routes.py", "refused.refusal.value"): [r.value for r in Refusal],
    # A validation summary: it comes with `details`, which make it invalid_fields.
    ("shared/bodies.py", """'; '.join((f"{d['field']}: {d['message']}" for d in details))"""): [],
    # An HTTP error aiohttp raised with its status's phrase: the status's code.
    ("shared/errors.py", "exc.reason.lower()"): [],
}


class Source:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path.relative_to(ROOT))
        self.tree = ast.parse(path.read_text())
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        self.module = importlib.import_module(module)
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node

    def function_of(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node
        return None


SOURCES = [
    Source(path)
    for package in PACKAGES
    for path in sorted((ROOT / package).rglob("*.py"))
    if path.name != "__main__.py"
]


def _strings(value: Any) -> Iterator[str]:
    """The texts a module-level value can give: a string, or those in a dict or tuple."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Enum):
        yield from _strings(value.value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _strings(item)


def _calls(name: str) -> Iterator[tuple[Source, ast.Call]]:
    for source in SOURCES:
        for node in ast.walk(source.tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if called == name:
                    yield source, node


class Finder:
    def __init__(self) -> None:
        self.messages: set[str] = set()
        self.unresolved: list[str] = []

    def resolve(self, source: Source, expr: ast.expr, site: str) -> None:
        known = PASSED_ON.get((source.name, ast.unparse(expr)))
        if known is not None:
            self.messages.update(known)
        elif isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            self.messages.add(expr.value)
        elif isinstance(expr, ast.Constant) and expr.value is None:
            pass
        elif isinstance(expr, ast.JoinedStr):
            # Each variable part stands for a number or a name: "1" fits both patterns.
            self.messages.add(
                "".join(
                    part.value if isinstance(part, ast.Constant) else "1" for part in expr.values
                )
            )
        elif isinstance(expr, ast.BoolOp):
            for value in expr.values:
                self.resolve(source, value, site)
        elif isinstance(expr, ast.IfExp):
            self.resolve(source, expr.body, site)
            self.resolve(source, expr.orelse, site)
        elif isinstance(expr, ast.Name) and self._parameter(source, expr, site):
            pass
        elif isinstance(expr, ast.Name) and hasattr(source.module, expr.id):
            self._module_value(source, getattr(source.module, expr.id), site)
        elif isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name):
            self._module_value(source, getattr(source.module, expr.value.id), site)
        elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            self._returned(source, expr.func.id, site)
        elif (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Attribute)
            and expr.func.attr == "get"
            and isinstance(expr.func.value, ast.Name)
        ):
            self._module_value(source, getattr(source.module, expr.func.value.id), site)
            for arg in expr.args[1:]:
                self.resolve(source, arg, site)
        else:
            self.unresolved.append(f"{site}: {ast.unparse(expr)}")

    def _module_value(self, source: Source, value: Any, site: str) -> None:
        found = list(_strings(value))
        if not found:
            self.unresolved.append(f"{site}: no text in {value!r}")
        self.messages.update(found)

    def _parameter(self, source: Source, name: ast.Name, site: str) -> bool:
        """A parameter: its default, and what every caller passes for it."""
        function = source.function_of(name)
        if function is None:
            return False
        args = function.args
        positional = [*args.posonlyargs, *args.args]
        with_default = positional[len(positional) - len(args.defaults) :]
        defaults = dict(zip(with_default, args.defaults, strict=True))
        defaults.update(
            (arg, default)
            for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
            if default is not None
        )
        parameters = {arg.arg: arg for arg in [*positional, *args.kwonlyargs]}
        if name.id not in parameters:
            assigned = [
                node
                for node in ast.walk(function)
                if isinstance(node, ast.Assign)
                and any(
                    isinstance(t, ast.Name) and t.id == name.id
                    for target in node.targets
                    for t in ast.walk(target)
                )
            ]
            for node in assigned:
                self.resolve(source, node.value, site)
            return bool(assigned)
        parameter = parameters[name.id]
        if parameter in defaults:
            self.resolve(source, defaults[parameter], site)
        for caller, call in _calls(function.name):
            for keyword in call.keywords:
                if keyword.arg == name.id:
                    self.resolve(caller, keyword.value, f"{caller.name}:{call.lineno}")
        return True

    def _returned(self, source: Source, function: str, site: str) -> None:
        for node in ast.walk(source.tree):
            if isinstance(node, ast.FunctionDef) and node.name == function:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and inner.value is not None:
                        self.resolve(source, inner.value, site)
                return
        self.unresolved.append(f"{site}: {function}() is not defined in {source.name}")


def _find_messages() -> Finder:
    finder = Finder()
    for source in SOURCES:
        for node in ast.walk(source.tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in RAISERS:
                continue
            site = f"{source.name}:{node.lineno}"
            if len(node.args) > RAISERS[name]:
                finder.resolve(source, node.args[RAISERS[name]], site)
            for keyword in node.keywords:
                if keyword.arg == "message":
                    finder.resolve(source, keyword.value, site)
    return finder


def test_every_error_message_in_the_code_base_has_a_code():
    finder = _find_messages()
    assert finder.unresolved == []
    # The search does find messages of every kind, from every process.
    assert {
        "unauthorized",
        "invalid cursor",
        "request body must be a JSON object",
        "invalid fields received",
        "room already exists",
        "Room is full",
        "username already taken",
        "1 unavailable",
    } <= finder.messages
    assert any(m.startswith("maximum number of public rooms reached (1)") for m in finder.messages)
    missing = sorted(m for m in finder.messages if code_of(400, m) is None)
    assert missing == [], "add these messages to shared/error_codes.py"


def test_codes_are_stable_identifiers():
    for code in {*CODES.values(), INVALID_FIELDS}:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code), code


def test_a_validation_summary_is_invalid_fields_and_an_http_status_has_its_own_code():
    assert code_of(400, "name: Field required; age: too big", validation=True) == "invalid_fields"
    assert code_of(408, "request timeout") == "request_timeout"
    assert code_of(400, "something nobody wrote down") is None


def test_docs_errors_md_is_the_table():
    assert (ROOT / "docs" / "errors.md").read_text() == render(), (
        "regenerate it: python -m shared.error_codes > docs/errors.md"
    )
