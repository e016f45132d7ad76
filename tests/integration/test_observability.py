"""Logs are JSON lines with the request id and no secrets; metrics count by route template."""

import asyncio
import io
import json
import logging
import math
import queue
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from chat_service.app import create_app
from chat_service.settings import ChatSettings
from shared.logs import (
    USER_ID_KEY,
    AccessLogger,
    Handoff,
    JsonFormatter,
    LogWriter,
    configure_logging,
    request_id_var,
)

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


async def send_secrets(client, token: str, created_id: str | None = None) -> str:
    """A GET with the token in its query too, and a room created with a password:
    what no log line may show. Returns the POST's request id."""
    r = await client.get(
        f"/api/rooms?access_token={token}",
        headers={"Authorization": token, "X-Request-ID": "trace-1"},
    )
    assert r.status == 200
    r = await client.post(
        "/api/create_room",
        json={"room_name": "secret room", "is_private": 1, "password": "hunter2-password"},
        headers={"Authorization": token} | ({"X-Request-ID": created_id} if created_id else {}),
    )
    assert r.status == 201
    request_id: str = r.headers["X-Request-ID"]
    return request_id


@contextmanager
def process_logging(stream: io.StringIO) -> Iterator[LogWriter]:
    """configure_logging as a process calls it, undone afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    switches = logging._srcfile, logging.logThreads, logging.logProcesses
    try:
        yield configure_logging("chat", "INFO", stream)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        logging._srcfile, logging.logThreads, logging.logProcesses = switches


async def test_log_lines_are_json_with_the_request_id_and_no_token(
    aiohttp_server, aiohttp_client, database_url, jwks_json, make_token
):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("chat"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        app = create_app(ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4))
        server = await aiohttp_server(app, access_log_class=AccessLogger)
        client = await aiohttp_client(server)
        token = make_token("alice")
        await send_secrets(client, token, "trace-2")
        r = await client.get("/healthz", headers={"X-Request-ID": "trace-3"})
        assert r.status == 200
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "aiohttp.access"]
    assert [
        (line["request_id"], line["path"], line["status"], line["user_id"]) for line in access
    ] == [
        ("trace-1", "/api/rooms", 200, "u_alice"),
        ("trace-2", "/api/create_room", 201, "u_alice"),
        ("trace-3", "/healthz", 200, None),
    ]
    assert all(line["service"] == "chat" and line["level"] == "info" for line in access)
    text = stream.getvalue()
    assert token not in text
    assert "hunter2-password" not in text


def test_the_log_writer_thread_writes_what_the_loop_hands_over():
    stream = io.StringIO()
    with process_logging(stream) as writer:
        token = request_id_var.set("trace-9")
        logging.getLogger("chat.test").info("hello %s", "world", extra={"room_id": 7})
        request_id_var.reset(token)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("chat.test").exception("it failed")
        logging.getLogger("chat.test").debug("below the level")
        writer.stop()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert TIMESTAMP.match(first.pop("ts"))
    assert first == {
        "level": "info",
        "service": "chat",
        "logger": "chat.test",
        "msg": "hello world",
        "request_id": "trace-9",
        "room_id": 7,
    }
    assert second["msg"] == "it failed"
    assert "request_id" not in second
    assert second["exc"].startswith("Traceback") and "ValueError: boom" in second["exc"]


def test_a_full_log_queue_drops_lines_and_says_how_many():
    records: queue.SimpleQueue = queue.SimpleQueue()
    handoff = Handoff(records, limit=2)
    logger = logging.getLogger("chat.flood")
    logger.addHandler(handoff)
    logger.propagate = False
    try:
        for i in range(5):
            logger.warning("line %d", i)
    finally:
        logger.removeHandler(handoff)
        logger.propagate = True
    assert handoff.dropped == 3
    stream = io.StringIO()
    writer = LogWriter(records, JsonFormatter("chat"), stream, handoff)
    writer.start()
    writer.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["msg"] for line in lines] == [
        "line 0",
        "line 1",
        "log lines dropped: stdout too slow",
    ]
    assert lines[2]["dropped"] == 3
    assert handoff.dropped == 0


def test_log_timestamps_are_what_datetime_writes():
    formatter = JsonFormatter("chat")
    moments = [1700000000.0, 1700000000.0004995, 1700000000.999, 1700000000.9999996]
    moments += [random.Random(9).uniform(1e9, 2e9) for _ in range(10_000)]
    for moment in moments:
        expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
        assert formatter._timestamp(moment) == expected


def test_request_durations_keep_sub_millisecond_precision():
    stream = io.StringIO()
    logger = logging.getLogger("test.access")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("chat"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        request = make_mocked_request("GET", "/healthz")
        response = web.Response()
        AccessLogger(logger, "").log(request, response, 0.000_123_4)
    finally:
        logger.removeHandler(handler)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["duration_ms"] == 0.123


def test_the_access_record_is_what_logger_info_makes():
    logger = logging.getLogger("test.access.record")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    srcfile = logging._srcfile
    logging._srcfile = None  # as configure_logging sets it: no caller lookup
    try:
        request = make_mocked_request("GET", "/healthz?access_token=secret")
        response = web.Response(status=204, headers={"X-Request-ID": "trace-7"})
        before = time.time()
        AccessLogger(logger, "").log(request, response, 0.002)
        after = time.time()
        fields = {
            "request_id": "trace-7",
            "method": "GET",
            "path": "/healthz",
            "status": 204,
            "duration_ms": 2.0,
            "remote": "unknown",  # a mocked request has no peer
            "user_id": None,
        }
        logger.info("request", extra=fields)
        logger.setLevel(logging.WARNING)
        AccessLogger(logger, "").log(request, response, 0.002)
    finally:
        logging._srcfile = srcfile
        logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    fast, usual = records
    assert before <= fast.created <= after
    assert fast.msecs == int((fast.created - int(fast.created)) * 1000)
    since = (fast.created - usual.created) * 1000
    assert abs(fast.relativeCreated - usual.relativeCreated - since) < 1e-3
    assert fast.getMessage() == "request"
    moments = {"created", "msecs", "relativeCreated"}
    assert {k: v for k, v in vars(fast).items() if k not in moments} == {
        k: v for k, v in vars(usual).items() if k not in moments
    }
    assert list(vars(fast)) == list(vars(usual))


def test_a_simple_queue_handoff_is_bounded_too():
    records: queue.SimpleQueue = queue.SimpleQueue()
    handoff = Handoff(records, limit=2)
    for i in range(4):
        record = logging.LogRecord("chat.flood", logging.WARNING, "", 0, "line %d", (i,), None)
        assert handoff.handle(record)
    assert handoff.dropped == 2
    assert [records.get_nowait().msg for _ in range(records.qsize())] == ["line 0", "line 1"]


async def test_the_process_writes_one_access_line_a_request_with_no_secret(
    aiohttp_server, aiohttp_client, database_url, jwks_json, make_token
):
    """As the processes log (configure_logging): the access line is written on the
    loop and handed to the log thread as text."""
    stream = io.StringIO()
    with process_logging(stream) as writer:
        app = create_app(ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4))
        server = await aiohttp_server(app, access_log_class=AccessLogger)
        client = await aiohttp_client(server)
        token = make_token("alice")
        created_id = await send_secrets(client, token)
        r = await client.get("/api/nowhere/é", headers={"X-Request-ID": "trace-3"})
        assert r.status == 404
        await client.close()
        writer.stop()
    text = stream.getvalue()
    access = [json.loads(line) for line in text.splitlines() if '"aiohttp.access"' in line]
    for line in access:
        assert TIMESTAMP.match(line.pop("ts"))
        assert isinstance(line.pop("duration_ms"), float)
        assert line.pop("remote") == "127.0.0.1"
    common = {"level": "info", "service": "chat", "logger": "aiohttp.access", "msg": "request"}
    assert access == [
        {**common, "request_id": "trace-1", "method": "GET", "path": "/api/rooms"}
        | {"status": 200, "user_id": "u_alice"},
        {**common, "request_id": created_id, "method": "POST", "path": "/api/create_room"}
        | {"status": 201, "user_id": "u_alice"},
        {**common, "request_id": "trace-3", "method": "GET", "path": "/api/nowhere/é"}
        | {"status": 404, "user_id": None},
    ]
    assert token not in text
    assert "hunter2-password" not in text


def test_the_written_access_line_is_what_the_formatter_writes_for_its_record(monkeypatch):
    """AccessLogger's own line (configure_logging's Handoff behind the logger) is,
    character for character, JsonFormatter's line for the record it would make."""
    records: queue.SimpleQueue = queue.SimpleQueue()
    handoff = Handoff(records, service="meeting")
    logger = logging.getLogger("test.access.line")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handoff)
    direct = AccessLogger(logger, "")
    assert direct._handoff is handoff
    captured: list[logging.LogRecord] = []
    plain = logging.Handler()
    plain.emit = captured.append  # type: ignore[method-assign]
    logger.addHandler(plain)
    assert AccessLogger(logger, "")._handoff is None  # two handlers: a record for both
    logger.removeHandler(handoff)
    usual = AccessLogger(logger, "")
    formatter = JsonFormatter("meeting")
    cases = [
        ("GET", "/rooms/code/abc-def-ghi", "trace-7", 200, 0.000_123_4, "u_1", "10.0.0.1"),
        ("POST", '/api/é/"q"/\\/\x7f', None, 404, 12.345_678_9, None, "::1"),
        ("DELETE", "/", "x" * 128, 500, 0.0, "ü", "unknown"),
    ]
    try:
        for method, path, request_id, status, seconds, user_id, remote in cases:
            moment = 1_700_000_000.123_456
            monkeypatch.setattr("shared.logs._now", lambda moment=moment: moment)
            monkeypatch.setattr("shared.logs.client_address", lambda _r, remote=remote: remote)
            request = make_mocked_request(method, path + "?access_token=secret")
            request[USER_ID_KEY] = user_id
            headers = {} if request_id is None else {"X-Request-ID": request_id}
            response = web.Response(status=status, headers=headers)
            direct.log(request, response, seconds)
            usual.log(request, response, seconds)
            line = records.get_nowait()
            assert isinstance(line, str)
            assert line == formatter.format(captured.pop()), line
            assert "secret" not in line
    finally:
        logger.removeHandler(plain)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


async def test_access_line_durations_are_finer_than_the_loop_s_clock(
    aiohttp_server, aiohttp_client, database_url, jwks_json, monkeypatch
):
    """uvloop's loop.time() counts whole milliseconds, so aiohttp's own duration is
    0 or whole milliseconds; the line's is measured by the request middleware."""
    loop = asyncio.get_running_loop()
    precise = loop.time
    monkeypatch.setattr(loop, "time", lambda: math.floor(precise() * 1000) / 1000)
    stream = io.StringIO()
    with process_logging(stream) as writer:
        app = create_app(ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4))
        server = await aiohttp_server(app, access_log_class=AccessLogger)
        client = await aiohttp_client(server)
        for _ in range(5):
            assert (await client.get("/healthz")).status == 200
        await client.close()
        writer.stop()
    durations = [
        json.loads(line)["duration_ms"]
        for line in stream.getvalue().splitlines()
        if '"aiohttp.access"' in line
    ]
    assert len(durations) == 5
    assert all(d > 0 and d != round(d) for d in durations), durations
