"""The one Dockerfile, its build context and the compose file, checked without a
Docker engine (none runs here): hadolint, the rules the issue names, the image's
own command and health check run as the container would run them, the
.dockerignore applied the way Docker applies it, and the Compose specification's
JSON schema."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import tomllib
from pathlib import Path

import yaml

from shared.settings import CommonSettings
from tests.deploy.helpers import BIN, PROCESSES, ROOT, dockerfile


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tool(*command: str) -> subprocess.CompletedProcess[str]:
    """One of the dev dependencies' command-line tools, from this virtualenv."""
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return _tool("hadolint", "--no-color", str(path))


def test_the_dockerfile_is_hadolint_clean(tmp_path):
    result = _hadolint(ROOT / "Dockerfile")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    # The linter does find what it should: shell-form CMD, an untagged base, a root user.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install aiohttp\nUSER root\nCMD python -m gateway\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3013", "DL3002", "DL3025"):
        assert rule in result.stdout, rule


def test_one_dockerfile_dependencies_before_source_numeric_non_root_exec_forms():
    steps = dockerfile()
    keywords = [step.keyword for step in steps]
    assert keywords.count("FROM") == 1
    assert any(s.keyword == "ARG" and s.arguments.startswith("SERVICE") for s in steps)
    copies = [s for s in steps if s.keyword == "COPY"]
    # pyproject.toml alone first, then the dependencies installed, then the source.
    assert copies[0].arguments == "pyproject.toml ./"
    install = next(
        i for i, s in enumerate(steps) if s.keyword == "RUN" and "requirements" in s.arguments
    )
    first_source = steps.index(copies[1])
    assert steps.index(copies[0]) < install < first_source
    assert [c.arguments for c in copies[1:]] == ["shared ./shared", "${SERVICE} ./${SERVICE}"]
    [user] = [s for s in steps if s.keyword == "USER"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user.arguments), user
    assert steps.index(user) > first_source
    [healthcheck] = [s for s in steps if s.keyword == "HEALTHCHECK"]
    assert healthcheck.exec_form() == ["python", "-m", "shared.healthcheck"]
    [cmd] = [s for s in steps if s.keyword == "CMD"]
    assert cmd.exec_form() == ["python", "-m", "shared.runner"]
    env = " ".join(s.arguments for s in steps if s.keyword == "ENV")
    assert "SERVICE=${SERVICE}" in env


def test_the_dependency_layer_installs_exactly_pyprojects_dependencies():
    install = next(s for s in dockerfile() if s.keyword == "RUN" and "requirements" in s.arguments)
    command = install.arguments.split(" > ")[0]
    listed = subprocess.run(
        ["/bin/sh", "-c", command.replace("python ", f"{BIN / 'python'} ", 1)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    with (ROOT / "pyproject.toml").open("rb") as f:
        assert listed == tomllib.load(f)["project"]["dependencies"]


def _image_env(**env: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    for step in dockerfile():
        if step.keyword == "ENV":
            for pair in step.arguments.split():
                name, _, value = pair.partition("=")
                environment[name] = value
    environment.update(env)
    return environment


def _run_image_command(instruction: str, env: dict[str, str]) -> list[str]:
    [step] = [s for s in dockerfile() if s.keyword == instruction]
    command = step.exec_form()
    assert command is not None and command[0] == "python"
    return [str(BIN / "python"), *command[1:]]


async def test_the_image_command_runs_the_process_its_service_names(database_url, jwks_json):
    port = _free_port()
    env = _image_env(
        SERVICE="chat_service",
        HOST="127.0.0.1",
        PORT=str(port),
        METRICS_PORT=str(_free_port()),
        DATABASE_URL=database_url,
        JWKS=jwks_json,
    )
    health = _run_image_command("HEALTHCHECK", env)
    process = await asyncio.create_subprocess_exec(
        *_run_image_command("CMD", env), env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            while True:
                line = json.loads(await process.stdout.readline())
                if line["msg"] == "started":
                    break
        assert line["service"] == "chat"
        checked = await asyncio.create_subprocess_exec(*health, env=env)
        assert await checked.wait() == 0
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.communicate()
    assert process.returncode == 0
    # Nothing listens any more: the health check says so.
    checked = await asyncio.create_subprocess_exec(*health, env=env, stderr=asyncio.subprocess.PIPE)
    assert await checked.wait() == 1


def test_an_unknown_service_is_a_json_startup_failure():
    env = _image_env(SERVICE="nginx")
    result = subprocess.run(
        _run_image_command("CMD", env),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == ""
    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["msg"] == "startup failed"
    assert "gateway, chat_service, meeting_service" in line["error"]


def _pattern(text: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it (Go's filepath.Match, plus **)."""
    text = text.strip("/")
    out = ""
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif text.startswith("**", i):
            out += ".*"
            i += 2
        elif text[i] == "*":
            out += "[^/]*"
            i += 1
        elif text[i] == "?":
            out += "[^/]"
            i += 1
        elif text[i] == "[":
            end = text.index("]", i)
            out += "[" + text[i + 1 : end].replace("!", "^", 1) + "]"
            i = end + 1
        else:
            out += re.escape(text[i])
            i += 1
    return re.compile(out)


def _ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negated, pattern in rules:
        if any(pattern.fullmatch(c) for c in candidates):
            ignored = not negated
    return ignored


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _pattern(line.lstrip("!"))))
    return rules


def test_dockerignore_keeps_keys_data_venv_git_and_caches_out():
    rules = _dockerignore()
    for path in (
        ".venv/bin/python",
        ".data/pg/PG_VERSION",
        ".data/compose/jwt_signing_key.pem",
        ".data/jwt_signing_key.pem",
        "gateway/.data/jwt_signing_key.pem",
        "signing.key",
        ".git/HEAD",
        ".git",
        ".env",
        "gateway/__pycache__/app.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/shared/app.data.json",
        "shared/.mypy_cache/x",
        ".ruff_cache/0.8/x",
        "rooms_platform.egg-info/PKG-INFO",
        "tests/conftest.py",
        "bench-results/x.json",
    ):
        assert _ignored(path, rules), path
    for path in (
        "pyproject.toml",
        "shared/app.py",
        "gateway/app.py",
        "gateway/migrations/001_users.sql",
        "chat_service/migrations/001_rooms.sql",
        "meeting_service/routes.py",
    ):
        assert not _ignored(path, rules), path


def test_the_real_build_context_is_small_and_holds_no_key():
    rules = _dockerignore()
    sent: list[Path] = []
    for directory, dirs, files in os.walk(ROOT):
        relative = Path(directory).relative_to(ROOT).as_posix()
        prefix = "" if relative == "." else relative + "/"
        # Docker walks into ignored directories only for exceptions below them;
        # none of ours has one, so an ignored directory is skipped whole.
        dirs[:] = [d for d in dirs if not _ignored(prefix + d, rules)]
        sent.extend(Path(directory, f) for f in files if not _ignored(prefix + f, rules))
    names = {p.relative_to(ROOT).as_posix() for p in sent}
    assert "pyproject.toml" in names and "shared/runner.py" in names
    assert not [n for n in names if n.endswith((".pem", ".key")) or "/." in "/" + n]
    size = sum(p.stat().st_size for p in sent)
    assert size < 2 * 1024 * 1024, f"{size} bytes in the build context"


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return _tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(path))


def test_the_compose_file_follows_the_compose_specification(tmp_path):
    result = _check_compose(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The schema does refuse what Compose refuses.
    broken = _compose()
    broken["services"]["gateway"]["stop_grace_period"] = {"seconds": 15}
    broken["services"]["chat"]["healthcheck"] = {"test": "x", "intervall": "5s"}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = _check_compose(path)
    assert result.returncode == 1
    assert "stop_grace_period" in result.stdout and "intervall" in result.stdout


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match.group(1))


def test_compose_builds_each_process_from_the_one_dockerfile_and_stops_it_gracefully():
    compose = _compose()
    services = compose["services"]
    [user] = [s.arguments for s in dockerfile() if s.keyword == "USER"]
    uid, gid = user.split(":")
    grace = float(compose["x-service-env"]["SHUTDOWN_GRACE_S"])
    assert grace == CommonSettings().shutdown_grace_s
    built = {}
    for name, service in services.items():
        if "build" not in service:
            continue
        assert service["build"]["context"] == "."
        assert "dockerfile" not in service["build"]  # the root Dockerfile
        built[name] = service["build"]["args"]["SERVICE"]
        # SIGKILL only after the process's own grace period has run out.
        assert _seconds(service["stop_grace_period"]) >= grace + 2
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert service["environment"]["METRICS_PORT"] == "9100"
        # /metrics is not published on the host.
        assert all("9100" not in str(port) for port in service.get("ports", []))
    assert sorted(built.values()) == sorted(PROCESSES)
    # The signing key: readable by the image's user alone.
    [secret] = services["gateway"]["secrets"]
    assert (secret["uid"], secret["gid"], secret["mode"]) == (uid, gid, 0o400)
    assert compose["secrets"][secret["source"]] == {"environment": "JWT_SIGNING_KEY_PEM"}
    target = services["gateway"]["environment"]["JWT_PRIVATE_KEY_FILE"]
    assert target == f"/run/secrets/{secret['target']}"
    # The edge's readiness is its own: it waits for the database only.
    assert list(services["gateway"]["depends_on"]) == ["postgres"]


def test_every_variable_the_compose_file_reads_is_in_env_example():
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    used |= {value["environment"] for value in _compose()["secrets"].values()}
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, re.M))
    assert used and used <= documented, used - documented
