"""`make run`: the embedded Postgres (unless DATABASE_URL is set) and the three
processes, in the foreground; Ctrl-C or SIGTERM stops them all, then the database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared.embedded_pg import EmbeddedPostgres
from shared.settings import CommonSettings

KILL_MARGIN_S = 5.0
DATA_DIR = Path(os.environ.get("DATA_DIR", ".data"))


def main() -> int:
    gateway_port = int(os.environ.get("GATEWAY_PORT", "8080"))
    chat_port = int(os.environ.get("CHAT_PORT", "8081"))
    meeting_port = int(os.environ.get("MEETING_PORT", "8082"))
    host = os.environ.get("HOST", "127.0.0.1")
    grace_s = CommonSettings().shutdown_grace_s

    embedded = None
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        embedded = EmbeddedPostgres(DATA_DIR / "pg")
        database_url = embedded.start()
        print(f"postgres   embedded, data in {embedded.pgdata}", flush=True)

    base = {**os.environ, "DATABASE_URL": database_url, "HOST": host}
    jwks_url = f"http://127.0.0.1:{gateway_port}/.well-known/jwks.json"
    processes = {
        "gateway": {
            "PORT": str(gateway_port),
            "CHAT_URL": f"http://127.0.0.1:{chat_port}",
            "MEETING_URL": f"http://127.0.0.1:{meeting_port}",
            "JWT_KEY_DIR": str(DATA_DIR),
        },
        "chat_service": {"PORT": str(chat_port), "JWKS_URL": jwks_url},
        "meeting_service": {"PORT": str(meeting_port), "JWKS_URL": jwks_url},
    }
    # The services believe the gateway's X-Forwarded-For, and whom the gateway believes.
    behind_gateway = ",".join(filter(None, [os.environ.get("TRUSTED_PROXIES"), "127.0.0.1", "::1"]))
    for name in ("chat_service", "meeting_service"):
        processes[name]["TRUSTED_PROXIES"] = behind_gateway
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        for name, env in processes.items():
            children[name] = subprocess.Popen(  # noqa: S603 - our own modules
                [sys.executable, "-m", name], env={**base, **env}, start_new_session=True
            )
            print(f"{name:<16} http://{host}:{env['PORT']}", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(
                        f"{name} exited with {child.returncode}; stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    exit_code = 1
                    stopping = True
            time.sleep(0.2)
    finally:
        # Each process closes its sockets and finishes its requests within its grace
        # period (SHUTDOWN_GRACE_S); one that overruns it by far is killed.
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s + KILL_MARGIN_S
        for child in children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded is not None:
            embedded.stop()
            print("postgres   stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
