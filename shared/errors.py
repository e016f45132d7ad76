"""Every error is JSON: {"error": ..., "code": ...} with optional "details"; never HTML,
never a traceback. The code comes from the one table in shared.error_codes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

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
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
)

FAULTS: tuple[type[Exception], ...] = (TimeoutError, *DB_UNAVAILABLE_ERRORS)


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


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, details=exc.details, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        message = _HTTP_MESSAGES.get(exc.status, exc.reason.lower())
        return error_response(exc.status, message, headers=headers)
    except asyncio.CancelledError:
        raise
    except FAULTS as exc:
        log.warning("database unavailable", extra={"error": repr(exc)})
        return error_response(
            503,
            "service unavailable",
            headers={"Retry-After": "1"},
            extra={"request_id": request_id_of(request)},
        )
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return error_response(500, "internal error", extra={"request_id": request_id_of(request)})
