"""The operators' command line, run against the test database: in-process through
main(argv) (as `python -m gateway.admin` runs it), and once as a real process."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import admin
from gateway.keys import KEY_FILE_NAME, SigningKey

PASSWORD = "correct horse battery"
NEW_PASSWORD = "battery staple horse"


@pytest.fixture
def cli(monkeypatch, database_url, tmp_path, capsys):
    for name in list(os.environ):
        if name.startswith(("JWT_", "TRUST", "ENVIRONMENT")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("JWT_KEY_DIR", str(tmp_path))
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")

    async def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = await asyncio.to_thread(admin.main, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def login(gateway, name, password):
    return await gateway.post("/auth/login", json={"username": name, "password": password})


async def test_migrate_the_gateway_schema_then_every_schema(cli, db):
    code, out, _ = await cli("migrate")
    assert code == 0
    assert out == "gateway: applied 1, 2\n"
    assert await cli("migrate") == (0, "gateway: applied none (up to date)\n", "")
    assert await db.fetchval("SELECT to_regclass('chat.rooms')") is None
    code, out, _ = await cli("migrate", "all")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "gateway: applied none (up to date)"
    assert lines[1].startswith("chat: applied 1")
    assert lines[2].startswith("meeting: applied 1")
    assert await db.fetchval("SELECT to_regclass('chat.rooms')::text") == "chat.rooms"
    assert await db.fetchval("SELECT to_regclass('meeting.rooms')::text") == "meeting.rooms"
    code, _, err = await cli("migrate", "nosuch")
    assert code == 2
    assert "invalid choice: 'nosuch'" in err


async def test_create_user_then_log_in(cli, gateway, db):
    code, out, err = await cli(
        "create-user",
        "ada",
        "--email",
        "ada@example.com",
        "--display-name",
        "Ada L.",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert (code, err) == (0, "")
    user = await db.fetchrow("SELECT id, display_name, password_hash FROM gateway.users")
    assert out == f"created user ada ({user['id']})\n"
    assert user["display_name"] == "Ada L."
    assert PASSWORD not in user["password_hash"]
    r = await gateway.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert r.status == 200
    assert (await r.json())["user"]["displayName"] == "Ada L."

    code, out, err = await cli("create-user", "ADA", "--password-stdin", stdin=PASSWORD)
    assert (code, out, err) == (1, "", "username already taken\n")
    code, _, err = await cli("create-user", "a b", "--password-stdin", stdin=PASSWORD)
    assert code == 1 and err.startswith("username: ")
    code, _, err = await cli("create-user", "bob", "--password-stdin", stdin="short\n")
    assert (code, err) == (1, "password: Value error, must be 8 to 72 bytes\n")
    code, _, err = await cli("create-user", "bob")  # stdin is not a terminal
    assert (code, err) == (1, "give the password on standard input with --password-stdin\n")
    assert await db.fetchval("SELECT count(*) FROM gateway.users") == 1


async def test_reset_password_ends_sessions_and_the_lockout(cli, gateway):
    r = await gateway.post("/auth/register", json={"username": "ada", "password": PASSWORD})
    session = await r.json()
    for _ in range(5):
        assert (await login(gateway, "ada", "wrong password")).status == 401
    assert (await login(gateway, "ada", PASSWORD)).status == 429

    code, out, err = await cli("reset-password", "ada", "--password-stdin", stdin=NEW_PASSWORD)
    assert (code, out, err) == (0, "password of ada reset; 1 session(s) revoked\n", "")
    r = await gateway.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert r.status == 401
    assert (await login(gateway, "ada", PASSWORD)).status == 401
    r = await login(gateway, "ada", NEW_PASSWORD)
    assert r.status == 200
    kept = (await r.json())["refresh_token"]

    code, out, _ = await cli(
        "reset-password", "ada", "--keep-sessions", "--password-stdin", stdin=PASSWORD
    )
    assert (code, out) == (0, "password of ada reset; 0 session(s) revoked\n")
    assert (await gateway.post("/auth/refresh", json={"refresh_token": kept})).status == 200
    code, _, err = await cli("reset-password", "nobody", "--password-stdin", stdin=PASSWORD)
    assert (code, err) == (1, "no user 'nobody'\n")


async def test_revoke_sessions_logs_a_user_out_everywhere(cli, gateway, db):
    r = await gateway.post(
        "/auth/register",
        json={"username": "ada", "password": PASSWORD, "email": "ada@example.com"},
    )
    sessions = [(await r.json())["refresh_token"]]
    sessions.append((await (await login(gateway, "ada", PASSWORD)).json())["refresh_token"])
    r = await gateway.post("/auth/register", json={"username": "bob", "password": PASSWORD})
    bobs = (await r.json())["refresh_token"]

    code, out, _ = await cli("revoke-sessions", "ada@example.com")
    assert code == 0
    assert out.startswith("2 session(s) of ada revoked; access tokens already issued")
    for token in sessions:
        assert (await gateway.post("/auth/refresh", json={"refresh_token": token})).status == 401
    assert (await gateway.post("/auth/refresh", json={"refresh_token": bobs})).status == 200
    assert (await cli("revoke-sessions", "ada"))[1].startswith("0 session(s) of ada revoked")


async def test_revoke_sessions_racing_refreshes_leaves_nothing_live(cli, gateway, db):
    await gateway.post("/auth/register", json={"username": "ada", "password": PASSWORD})
    tokens = [
        (await (await login(gateway, "ada", PASSWORD)).json())["refresh_token"] for _ in range(10)
    ]
    refreshes = [gateway.post("/auth/refresh", json={"refresh_token": t}) for t in tokens]
    results = await asyncio.gather(cli("revoke-sessions", "ada"), *refreshes)
    assert results[0][0] == 0
    live = await db.fetchval(
        "SELECT count(*) FROM gateway.refresh_tokens"
        " WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > now()"
    )
    assert live == 0


async def test_rotate_key(cli, tmp_path, monkeypatch):
    key = SigningKey.generate()
    (tmp_path / KEY_FILE_NAME).write_bytes(key.to_pem())
    code, out, _ = await cli("rotate-key")
    assert code == 0
    new = SigningKey.from_pem((tmp_path / KEY_FILE_NAME).read_bytes())
    assert new.kid != key.kid
    assert SigningKey.from_pem((tmp_path / "jwt_signing_key.previous.pem").read_bytes()).kid == (
        key.kid
    )
    assert out.startswith(f"new signing key {new.kid} in {tmp_path / KEY_FILE_NAME}")
    code, out, _ = await cli("check-config")
    assert f"signing key: {new.kid} (previous: {key.kid})" in out

    monkeypatch.setenv("JWT_PRIVATE_KEY", key.to_pem().decode())
    code, _, err = await cli("rotate-key")
    assert code == 1 and err.startswith("the signing key is inline (JWT_PRIVATE_KEY)")
    monkeypatch.delenv("JWT_PRIVATE_KEY")
    monkeypatch.setenv("JWT_PRIVATE_KEY_FILE", str(tmp_path / "missing.pem"))
    code, _, err = await cli("rotate-key")
    assert (code, err) == (1, f"no signing key at {tmp_path / 'missing.pem'}\n")


async def test_check_config(cli, monkeypatch, tmp_path):
    code, out, err = await cli("check-config")
    assert (code, err) == (0, "")
    assert "database: reachable (Postgres" in out
    assert "gateway migrations pending: [1, 2]" in out
    assert out.endswith("configuration ok\n")
    await cli("migrate")
    assert "gateway migrations: ok" in (await cli("check-config"))[1]

    monkeypatch.setenv("ENVIRONMENT", "production")
    code, out, err = await cli("check-config")
    assert code == 1
    assert "FAILED signing key: set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE in production" in err

    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, out, err = await cli("check-config")
    assert code == 1 and "FAILED cannot connect to the database" in err

    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.1/8")
    code, out, err = await cli("check-config")
    assert code == 1 and err.startswith("configuration: TRUSTED_PROXIES: ")


def test_the_command_runs_as_a_process(database_url, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "JWT_KEY_DIR": str(tmp_path),
        "BCRYPT_ROUNDS": "4",
    }
    run = subprocess.run(
        [sys.executable, "-m", "gateway.admin", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (run.returncode, run.stdout) == (0, "gateway: applied 1, 2\n"), run.stderr
    script = Path(sys.executable).parent / "rooms-admin"
    run = subprocess.run(
        [str(script), "create-user", "ada", "--password-stdin"],
        env=env,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("created user ada (")
    run = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "create-user" in run.stderr and "check-config" in run.stderr
