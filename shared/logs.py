"""Structured logs: one JSON object a line, carrying the request id.

Nothing here logs a body, a query string or an Authorization header, so
passwords and tokens never reach a log line.

A process's lines are formatted and written by a thread of their own
(`configure_logging`): the event loop only hands each record over, and the
writer sends everything that queued up meanwhile in one write.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import sys
import threading
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from shared.forwarded import client_address

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._second = -1
        self._prefix = ""

    def _timestamp(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, as datetime writes it; the part up to
        the second is made once a second."""
        second = int(created)
        micros = round((created - second) * 1e6)
        if micros >= 1_000_000:  # rounds up into the next second: rare, the long way
            return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        if second != self._second:
            stamp = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
            self._prefix, self._second = stamp.removesuffix("+00:00"), second
        return f"{self._prefix}.{micros // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update((k, v) for k, v in record.__dict__.items() if k not in _RESERVED)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str)


MAX_QUEUED_LINES = 10_000


class Handoff(logging.handlers.QueueHandler):
    """Puts a record on the writer's queue with what only the logging thread knows:
    its request id (a context variable), its message and any traceback, as text.
    A full queue (stdout stalled) drops the line and counts it, rather than grow
    without bound or stall the event loop."""

    def __init__(self, records: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__(records)
        self.dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        request_id = request_id_var.get()
        if request_id and "request_id" not in record.__dict__:
            record.request_id = request_id
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


_TRACEBACKS = logging.Formatter()


class LogWriter(threading.Thread):
    """Formats and writes the queued records, a batch per write."""

    def __init__(
        self,
        records: queue.Queue[logging.LogRecord | None],
        formatter: logging.Formatter,
        stream: TextIO,
        handoff: Handoff,
    ) -> None:
        super().__init__(name="log-writer", daemon=True)
        self.records, self.formatter, self.stream, self.handoff = (
            records,
            formatter,
            stream,
            handoff,
        )

    def run(self) -> None:
        while True:
            batch = [self.records.get()]
            while len(batch) < 1000:
                try:
                    batch.append(self.records.get_nowait())
                except queue.Empty:
                    break
            lines = [self.formatter.format(r) for r in batch if r is not None]
            if self.handoff.dropped:
                dropped, self.handoff.dropped = self.handoff.dropped, 0
                lines.append(self._dropped_line(dropped))
            if lines:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            if None in batch:
                return

    def _dropped_line(self, count: int) -> str:
        record = logging.LogRecord("shared.logs", logging.WARNING, "", 0, "", (), None)
        record.msg, record.created = "log lines dropped: stdout too slow", time.time()
        record.dropped = count
        return self.formatter.format(record)

    def stop(self) -> None:
        self.records.put(None)
        self.join(timeout=5)


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> LogWriter:
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(MAX_QUEUED_LINES)
    handoff = Handoff(records)
    writer = LogWriter(records, JsonFormatter(service), stream or sys.stdout, handoff)
    writer.start()
    atexit.register(writer.stop)
    root = logging.getLogger()
    root.handlers[:] = [handoff]
    root.setLevel(level.upper())
    # What the JSON lines never show, so no record pays for it: the caller's file and
    # line (a stack walk per record), thread, process and multiprocessing names.
    logging._srcfile = None  # the documented off switch
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    return writer


# Where the auth middleware leaves the caller's user id, for the request line.
USER_ID_KEY = web.RequestKey("log_user_id", str)
# Set on a request whose answer another process gave and logged (the gateway's
# HTTP relay: the service's line has the same request id): no line here.
LOGGED_UPSTREAM_KEY = web.RequestKey("logged_upstream", str)


class AccessLogger(AbstractAccessLogger):
    """One line a request: method, path without its query (it may hold a token), status,
    time (to the microsecond), and the caller's user id when the request carried a token."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if LOGGED_UPSTREAM_KEY in request:
            return
        self.logger.info(
            "request",
            extra={
                "request_id": response.headers.get("X-Request-ID"),
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": round(time * 1000, 3),
                "remote": client_address(request),
                "user_id": request.get(USER_ID_KEY),
            },
        )
