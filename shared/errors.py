"""Every error is JSON: {"error": ..., "code": ...} with optional "details"; never HTML,
never a traceback. The code comes from the one table in shared.error_codes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from shared.error_codes import code_of, status_code
from shared.request_id import request_id_of

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer the client caused or should know of: a status and a message."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.headers = headers


UNAUTHORIZED = "unauthorized"

_HTTP_MESSAGES = {
    400: "bad request",
    401: UNAUTHORIZED,
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
    415: "unsupported media type",
}

# The database is restarting or out of reach: a fault, not a bug. The pool
# reconnects by itself, so the next request succeeds once Postgres is back.
DB_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
)

FAULTS: tuple[type[Exception], ...] = (TimeoutError, *DB_UNAVAILABLE_ERRORS)

# What only a lost or refusing database raises.
_DATABASE_LOST: tuple[type[Exception], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)
# asyncpg's own words for a connection or pool that is gone. Other InterfaceErrors
# and InternalClientErrors, such as "another operation is in progress", are bugs;
# but operation 2 is the protocol consuming an error the server sent unasked, which
# on a pooled idle connection is the server's FATAL as it shuts down: a BEGIN on
# that connection fails with it before asyncpg has marked the connection closed.
_GONE = (
    "connection is closed",
    "pool is closing",
    "pool is closed",
    'protocol is in the "failed" state',
    "not connected",
    "another operation (2) is in progress",
)


class Unavailable(Exception):
    """Something this process needs is out of reach (the gateway's keys): 503, retry."""


def _raised_in_asyncpg(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("asyncpg"):
            return True
        tb = tb.tb_next
    return False


def database_lost(exc: BaseException) -> bool:
    """Whether `exc` says the database is out of reach. It looks down the chain:
    asyncpg may report a lost connection as an error of its own raised while it
    cleans up after the real one (InternalClientError "cannot switch to state 15"
    from the ROLLBACK of a transaction whose connection just died)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _DATABASE_LOST):
            return True
        if isinstance(
            current, asyncpg.exceptions.InterfaceError | asyncpg.exceptions.InternalClientError
        ) and any(gone in str(current) for gone in _GONE):
            return True
        # Refused or reset connections, and command or acquire timeouts, inside asyncpg.
        if isinstance(current, OSError | TimeoutError) and _raised_in_asyncpg(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def client_gone(request: web.BaseRequest) -> bool:
    """The client hung up: nobody is left to answer."""
    transport = request.transport
    return transport is None or transport.is_closing()


# nginx's status for a request whose client left before the answer: it reaches no
# one, but the access log and the metrics tell it from a server error.
CLIENT_CLOSED_REQUEST = 499


def error_response(
    status: int,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    code = code_of(status, message, validation=bool(details))
    if code is None:
        log.warning("error message without a code", extra={"error_message": message})
        code = status_code(status)
    body: dict[str, Any] = {"error": message, "code": code}
    if details:
        body["details"] = details
    if extra:
        body.update(extra)
    return web.json_response(body, status=status, headers=headers)


def answer_for(request: web.Request, exc: Exception) -> web.Response | None:
    """The JSON answer for what a handler raised; None for an HTTPException that is
    no error (a redirect), which is raised on for aiohttp to send."""
    return answer_of(
        exc,
        path=request.path,
        method=request.method,
        gone=lambda: client_gone(request),
        request_id=lambda: request_id_of(request),
    )


def answer_of(
    exc: Exception,
    *,
    path: str,
    method: str,
    gone: Callable[[], bool],
    request_id: Callable[[], str],
) -> web.Response | None:
    """`answer_for`, given what it reads of the request (an edge has no web.Request:
    shared.service_edge)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.message, details=exc.details, headers=exc.headers)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            return None
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        message = _HTTP_MESSAGES.get(exc.status, exc.reason.lower())
        return error_response(exc.status, message, headers=headers)
    return fault_response(exc, path=path, method=method, gone=gone(), request_id=request_id)


def fault_response(
    exc: Exception, *, path: str, method: str, gone: bool, request_id: Callable[[], str]
) -> web.Response:
    """What an exception nobody handled says: the client left, a dependency is out
    of reach (503, retry), the client sent a broken body (400), or a bug (500)."""
    if gone:
        log.info(
            "client disconnected",
            extra={"path": path, "method": method, "error": type(exc).__name__},
        )
        return web.Response(status=CLIENT_CLOSED_REQUEST)
    if isinstance(exc, Unavailable) or database_lost(exc):
        log.warning("service unavailable", extra={"error": repr(exc)})
        return error_response(
            503,
            "service unavailable",
            headers={"Retry-After": "1"},
            extra={"request_id": request_id()},
        )
    if isinstance(exc, RequestPayloadError):
        # A body that breaks its own framing (bad chunked encoding, short Content-Length).
        log.info("malformed request body", extra={"error": type(exc).__name__})
        return error_response(400, _HTTP_MESSAGES[400])
    log.exception("unhandled error", extra={"path": path, "method": method})
    return error_response(500, "internal error", extra={"request_id": request_id()})
