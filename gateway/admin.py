"""The operators' command line: `python -m gateway.admin COMMAND` (or `rooms-admin`).

Every command reads the gateway's configuration from the environment, as the
server does, and exits 0 on success, 1 on failure (with the reason on stderr),
2 on a usage error. Passwords are read from standard input, never from the
command line (where `ps` and shell histories would show them)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from pydantic import ValidationError

from gateway import login_limits, tokens_store, users_store
from gateway.keys import current_key_path, key_ring_of, previous_key_path, rotate_key_file
from gateway.models import Password, RegisterIn, Strict, User
from gateway.settings import GatewaySettings
from shared.db import migrate
from shared.errors import ApiError
from shared.passwords import PasswordHasher

# Each schema (named as the process that owns it names it) and its package's migrations.
SCHEMAS = {"gateway": "gateway", "chat": "chat_service", "meeting": "meeting_service"}


class Failure(Exception):
    """A command that could not do its job: the message is for the operator."""


def _migrations_of(schema: str) -> Path:
    return Path(__file__).parent.parent / SCHEMAS[schema] / "migrations"


async def _connect(settings: GatewaySettings, schema: str = "gateway") -> asyncpg.Connection:
    try:
        conn: asyncpg.Connection = await asyncpg.connect(
            settings.database_url,
            timeout=min(settings.db_connect_timeout_s, 10.0),
            server_settings={"search_path": schema, "application_name": "rooms-admin"},
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise Failure(f"cannot connect to the database: {exc}") from None
    return conn


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise Failure("the passwords differ")
    else:
        raise Failure("give the password on standard input with --password-stdin")
    try:
        _PasswordCheck.model_validate({"password": password})
    except ValidationError as exc:
        raise Failure(f"password: {exc.errors()[0]['msg']}") from None
    return password


class _PasswordCheck(Strict):
    password: Password


async def _hash(settings: GatewaySettings, password: str) -> str:
    hasher = PasswordHasher(rounds=settings.bcrypt_rounds, workers=1, queue=0, retry_after_s=1)
    try:
        return await hasher.hash(password)
    finally:
        hasher.close()


async def _find_user(conn: asyncpg.Connection, name: str) -> User:
    user = await users_store.find_for_login(
        conn, username=None if "@" in name else name, email=name if "@" in name else None
    )
    if user is None:
        raise Failure(f"no user {name!r}")
    return user


async def create_user(settings: GatewaySettings, args: argparse.Namespace) -> str:
    password = _read_password(args)
    fields = {"username": args.username, "password": password}
    if args.email is not None:
        fields["email"] = args.email
    if args.display_name is not None:
        fields["displayName"] = args.display_name
    try:
        body = RegisterIn.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise Failure(f"{error['loc'][0]}: {error['msg']}") from None
    password_hash = await _hash(settings, body.password)
    conn = await _connect(settings)
    try:
        user = await users_store.register(conn, body, password_hash)
    except ApiError as exc:
        raise Failure(exc.message) from None
    finally:
        await conn.close()
    return f"created user {user.username} ({user.id})"


async def reset_password(settings: GatewaySettings, args: argparse.Namespace) -> str:
    password = _read_password(args)
    password_hash = await _hash(settings, password)
    conn = await _connect(settings)
    try:
        async with conn.transaction():
            user = await _find_user(conn, args.user)
            await users_store.set_password(conn, user.id, password_hash)
            # A reset ends a lockout, and (unless kept) every session: whoever
            # knew the old password is logged out.
            await login_limits.clear(conn, f"account:{user.id}")
            sessions = 0 if args.keep_sessions else await tokens_store.revoke_user(conn, user.id)
    finally:
        await conn.close()
    return f"password of {user.username} reset; {sessions} session(s) revoked"


async def revoke_sessions(settings: GatewaySettings, args: argparse.Namespace) -> str:
    conn = await _connect(settings)
    try:
        async with conn.transaction():
            user = await _find_user(conn, args.user)
            sessions = await tokens_store.revoke_user(conn, user.id)
    finally:
        await conn.close()
    return (
        f"{sessions} session(s) of {user.username} revoked; access tokens already"
        f" issued stay valid until they expire (at most {settings.access_token_ttl_s} s)"
    )


async def rotate_key(settings: GatewaySettings, args: argparse.Namespace) -> str:
    if settings.jwt_private_key:
        raise Failure(
            "the signing key is inline (JWT_PRIVATE_KEY): generate a new one with"
            " `python -m gateway.keys PATH`, set it as JWT_PRIVATE_KEY, and the old one"
            " as JWT_PREVIOUS_PRIVATE_KEY"
        )
    if settings.jwt_private_key_file is None and settings.environment != "development":
        raise Failure("set JWT_PRIVATE_KEY_FILE: the file the key is rotated in")
    path = current_key_path(settings.jwt_private_key_file, settings.jwt_key_dir)
    if not path.exists():
        raise Failure(f"no signing key at {path}")
    previous = settings.jwt_previous_private_key_file or previous_key_path(path)
    try:
        old, new = rotate_key_file(path, previous)
    except OSError as exc:
        raise Failure(f"cannot rotate the key: {exc}") from None
    return (
        f"new signing key {new.kid} in {path}; the previous one, {old.kid}, in {previous}."
        " Restart every gateway replica: each then signs with the new key and publishes"
        " both, and the services fetch the new key when a token first names it."
    )


async def migrate_schemas(settings: GatewaySettings, args: argparse.Namespace) -> str:
    schemas = list(SCHEMAS) if args.schema == "all" else [args.schema]
    lines = []
    for schema in schemas:
        conn = await _connect(settings, schema)
        try:
            applied = await migrate(conn, schema, _migrations_of(schema))
        except asyncpg.PostgresError as exc:
            raise Failure(f"{schema}: {exc}") from None
        finally:
            await conn.close()
        done = ", ".join(str(v) for v in applied) if applied else "none (up to date)"
        lines.append(f"{schema}: applied {done}")
    return "\n".join(lines)


async def check_config(settings: GatewaySettings, args: argparse.Namespace) -> str:
    """Everything the gateway needs to start, checked without starting it."""
    problems = []
    lines = [f"environment: {settings.environment}"]
    try:
        keys = key_ring_of(settings)
        previous = keys.previous.kid if keys.previous else "none"
        lines.append(f"signing key: {keys.current.kid} (previous: {previous})")
    except (OSError, ValueError, RuntimeError) as exc:
        problems.append(f"signing key: {exc}")
    try:
        conn = await _connect(settings)
    except Failure as exc:
        problems.append(str(exc))
    else:
        try:
            version = await conn.fetchval("SHOW server_version")
            lines.append(f"database: reachable (Postgres {version})")
            wanted = {int(p.name.split("_")[0]) for p in _migrations_of("gateway").glob("*.sql")}
            exists = await conn.fetchval("SELECT to_regclass('gateway.schema_migrations')")
            applied = (
                {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                if exists
                else set()
            )
            pending = sorted(wanted - applied)
            lines.append(
                f"gateway migrations pending: {pending}" if pending else "gateway migrations: ok"
            )
        finally:
            await conn.close()
    proxies = ", ".join(str(n) for n in settings.trusted_proxies) or "none (peer is the client)"
    lines.append(f"trusted proxies: {proxies}")
    lines.append(f"upstreams: chat {settings.chat_url}, meeting {settings.meeting_url}")
    if problems:
        raise Failure("\n".join(lines + [f"FAILED {problem}" for problem in problems]))
    return "\n".join([*lines, "configuration ok"])


Command = Callable[[GatewaySettings, argparse.Namespace], Awaitable[str]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rooms-admin"
        if Path(sys.argv[0]).name == "rooms-admin"
        else "python -m gateway.admin",
        description="Operate the rooms gateway: users, sessions, keys, migrations, configuration."
        " Configuration comes from the environment, as for the server.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    def password_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input",
        )

    sub = command("create-user", create_user, "create an account")
    sub.add_argument("username")
    sub.add_argument("--email")
    sub.add_argument("--display-name")
    password_option(sub)

    sub = command(
        "reset-password",
        reset_password,
        "set a user's password, end their lockout and revoke their sessions",
    )
    sub.add_argument("user", help="username or email")
    sub.add_argument("--keep-sessions", action="store_true", help="do not revoke sessions")
    password_option(sub)

    sub = command("revoke-sessions", revoke_sessions, "log a user out everywhere")
    sub.add_argument("user", help="username or email")

    command("rotate-key", rotate_key, "replace the signing key, keeping the old one published")

    sub = command("migrate", migrate_schemas, "apply database migrations without the server")
    sub.add_argument(
        "schema",
        nargs="?",
        default="gateway",
        choices=(*SCHEMAS, "all"),
        help="whose schema (default: the gateway's; `all` needs a role that may create"
        " every schema, as `make run` has)",
    )

    command("check-config", check_config, "check the configuration, key and database")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # usage errors (2) and --help (0), already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = "_".join(str(part) for part in error["loc"]).upper()
            print(f"configuration: {name}: {error['msg']}", file=sys.stderr)
        return 1
    try:
        print(asyncio.run(args.run(settings, args)))
    except Failure as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
