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


class Timestamps:
    """ISO 8601 in UTC to the millisecond, as datetime writes it; the part up to the
    second is made once a second. One per thread that writes them."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        micros = round((created - second) * 1e6)
        if micros >= 1_000_000:  # rounds up into the next second: rare, the long way
            return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        if second != self._second:
            stamp = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
            self._prefix, self._second = stamp.removesuffix("+00:00"), second
        return f"{self._prefix}.{micros // 1000:03d}+00:00"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._timestamp = Timestamps()

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
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return _encode(entry)


# json.dumps(entry, default=str) builds this encoder anew on every call.
_encode = json.JSONEncoder(default=str).encode


MAX_QUEUED_LINES = 10_000
# Records to format, lines formatted already (the access log's), None to stop.
Records = queue.SimpleQueue[logging.LogRecord | str | None]


class Handoff(logging.handlers.QueueHandler):
    """Puts a record on the writer's queue with what only the logging thread knows:
    its request id (a context variable), its message and any traceback, as text.
    A full queue (stdout stalled) drops the line and counts it, rather than grow
    without bound or stall the event loop. The queue is a SimpleQueue (a put is one
    C call), bounded here at `limit` lines."""

    def __init__(
        self, records: Records, limit: int = MAX_QUEUED_LINES, service: str | None = None
    ) -> None:
        super().__init__(records)
        self.records = records
        self.limit = limit
        self.dropped = 0
        # The process's name in its lines, for lines formatted before the handoff.
        self.service = service

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle's lock is not needed: the queue is thread-safe and
        # prepare() touches only this record.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        request_id = request_id_var.get()
        if request_id and "request_id" not in record.__dict__:
            record.request_id = request_id
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        return record

    def enqueue(self, record: logging.LogRecord | str) -> None:
        """A record, or a line formatted already (AccessLogger's), or dropped."""
        if self.records.qsize() >= self.limit:
            self.dropped += 1
        else:
            self.records.put_nowait(record)


_TRACEBACKS = logging.Formatter()


# How long the writer waits after a write before it takes the next batch.
LINGER_S = 0.005


class LogWriter(threading.Thread):
    """Formats and writes the queued records, a batch per write."""

    def __init__(
        self,
        records: Records,
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
            lines = [
                r if r.__class__ is str else self.formatter.format(r)  # type: ignore[arg-type]
                for r in batch
                if r is not None
            ]
            if self.handoff.dropped:
                dropped, self.handoff.dropped = self.handoff.dropped, 0
                lines.append(self._dropped_line(dropped))
            if lines:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            if None in batch:
                return
            # Let the next lines gather: a process under load then writes (and wakes
            # this thread) a few hundred times a second, not once a request.
            time.sleep(LINGER_S)

    def _dropped_line(self, count: int) -> str:
        record = logging.LogRecord("shared.logs", logging.WARNING, "", 0, "", (), None)
        record.msg, record.created = "log lines dropped: stdout too slow", time.time()
        record.dropped = count
        return self.formatter.format(record)

    def stop(self) -> None:
        self.records.put(None)
        self.join(timeout=5)


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> LogWriter:
    records: Records = queue.SimpleQueue()
    handoff = Handoff(records, service=service)
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
# None until then (the request middleware sets it first).
USER_ID_KEY: web.RequestKey[str | None] = web.RequestKey("log_user_id")
# Set on a request whose answer another process gave and logged (the gateway's
# HTTP relay: the service's line has the same request id): no line here.
LOGGED_UPSTREAM_KEY = web.RequestKey("logged_upstream", str)
# When the request middleware took the request (time.perf_counter()): the line's
# duration is measured from it, since aiohttp's own is loop.time(), which uvloop
# keeps to the millisecond.
STARTED_KEY = web.RequestKey("log_started", float)


class AccessLogger(AbstractAccessLogger):
    """One line a request: method, path without its query (it may hold a token), status,
    time (to the microsecond), and the caller's user id when the request carried a token.

    Where the line goes straight to the process's log writer (configure_logging's
    Handoff is all the logger leads to), it is written here, as JsonFormatter writes
    the record of `logger.info("request", extra=...)`, and handed over as text: the
    log thread then only writes it. Otherwise (a test's handlers) that record goes to
    the logger as such, without rebuilding its constant attributes on every request."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        # Made once per connection, as Logger.info makes it with no caller lookup
        # (configure_logging turns that off), then copied per request.
        template = logger.makeRecord(
            logger.name,
            logging.INFO,
            "(unknown file)",
            0,
            "request",
            (),
            None,
            "(unknown function)",
        )
        self._template = template.__dict__
        # relativeCreated is counted from logging's start: from the template's on.
        self._relative_base = template.relativeCreated - template.created * 1000
        self._handoff = _only_handoff(logger)
        if self._handoff is not None:
            self._timestamp = Timestamps()
            self._head = (
                f'", "level": "info", "service": {_json(self._handoff.service)},'
                f' "logger": {_json(logger.name)}, "msg": "request", "request_id": '
            )

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if LOGGED_UPSTREAM_KEY in request:
            return
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        started = request.get(STARTED_KEY)
        if started is not None:
            time = _perf_counter() - started
        if self._handoff is not None:
            self._handoff.enqueue(
                f'{{"ts": "{self._timestamp(_now())}{self._head}'
                f"{_json(response.headers.get('X-Request-ID'))},"
                f' "method": {_json(request.method)}, "path": {_json(request.path)},'
                f' "status": {response.status!r}, "duration_ms": {round(time * 1000, 3)!r},'
                f' "remote": {_json(client_address(request))},'
                f' "user_id": {_json(request.get(USER_ID_KEY))}}}'
            )
            return
        record: logging.LogRecord = _new_record(logging.LogRecord)
        fields = record.__dict__
        fields.update(self._template)
        now = _now()
        fields["created"] = now
        fields["msecs"] = int((now - int(now)) * 1000) + 0.0
        fields["relativeCreated"] = self._relative_base + now * 1000
        fields["request_id"] = response.headers.get("X-Request-ID")
        fields["method"] = request.method
        fields["path"] = request.path
        fields["status"] = response.status
        fields["duration_ms"] = round(time * 1000, 3)
        fields["remote"] = client_address(request)
        fields["user_id"] = request.get(USER_ID_KEY)
        logger.handle(record)


def _only_handoff(logger: logging.Logger) -> Handoff | None:
    """The Handoff configure_logging installed, when it is the one handler a record
    of `logger` at INFO reaches (as Logger.callHandlers walks), and nothing filters."""
    if logger.filters or logger.disabled:
        return None
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers.extend(current.handlers)
        current = current.parent if current.propagate else None
    if len(handlers) != 1:
        return None
    [handler] = handlers
    if (
        isinstance(handler, Handoff)
        and handler.service is not None
        and not handler.filters
        and handler.level <= logging.INFO
    ):
        return handler
    return None


def _json(value: str | None) -> str:
    """A string or null, as JsonFormatter's encoder writes it (ASCII, escaped)."""
    return "null" if value is None else _encode_string(value)


_encode_string = json.encoder.encode_basestring_ascii
_new_record = object.__new__
_now = time.time
_perf_counter = time.perf_counter
