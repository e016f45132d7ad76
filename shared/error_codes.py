"""The machine code of every error message, in one table that the one error path
(`shared.errors.error_response`) reads: `{"error": "Room is full", "code": "room_full"}`.

`error` is for people and may be reworded; `code` is for programs and never changes.
Adding an error message? Add it here (tests/integration/test_error_codes.py finds the ones
missing) and regenerate the table clients read: `python -m shared.error_codes > docs/errors.md`.
"""

from __future__ import annotations

import re
from http import HTTPStatus

# Exact messages. Two messages may share a code when a client should treat them alike.
CODES: dict[str, str] = {
    # Every process
    "bad request": "bad_request",
    "unauthorized": "unauthorized",
    "forbidden": "forbidden",
    "not found": "not_found",
    "method not allowed": "method_not_allowed",
    "request body too large": "body_too_large",
    "unsupported media type": "unsupported_media_type",
    "request body must be a JSON object": "invalid_body",
    "invalid cursor": "invalid_cursor",
    "service unavailable": "service_unavailable",
    "internal error": "internal_error",
    "request header fields too large": "header_fields_too_large",
    "request URI too long": "uri_too_long",
    "websocket upgrade required": "websocket_upgrade_required",
    "idempotency key reused with a different request": "idempotency_key_reused",
    "Idempotency-Key: must be 1 to 255 characters": "invalid_idempotency_key",
    "method not implemented": "method_not_implemented",
    "request timed out": "request_timed_out",
    # Gateway: identity
    "username or email is required": "login_name_required",
    "too many login attempts": "too_many_login_attempts",
    "too many registrations": "too_many_registrations",
    "too many guest tokens": "too_many_guest_tokens",
    "invalid credentials": "invalid_credentials",
    "username already taken": "username_taken",
    "email already registered": "email_taken",
    "already registered": "already_registered",
    "displayName: may not be null": "invalid_fields",
    # Gateway and chat: bcrypt's bounded queue (shared.passwords)
    "too many password checks in progress; retry shortly": "passwords_busy",
    # Gateway: relay
    "websocket upgrade refused": "websocket_upgrade_refused",
    "invalid X-Forwarded-For header": "invalid_forwarded_for",
    "origin not allowed": "origin_not_allowed",
    # Chat service
    "invalid fields received": "invalid_fields",
    "room_name must be a string": "invalid_fields",
    "room not found": "room_not_found",
    "room already exists": "room_name_taken",
    "you are not in this room": "not_in_room",
    "only the room creator can delete it": "not_room_creator",
    "password required": "password_required",
    "wrong password": "wrong_password",
    # Meeting service
    "Room not found": "room_not_found",
    "Participant not found": "participant_not_found",
    "before: no such message in this room": "message_not_found",
    "Only the host can update room settings": "not_host",
    "Only the host can end the room": "not_host",
    "Only the host can admit participants": "not_host",
    "Only the host can deny participants": "not_host",
    "Only the host can remove participants": "not_host",
    "The host cannot be removed": "host_not_removable",
    "Room is no longer active": "room_inactive",
    "Room is locked": "room_locked",
    "Room is full": "room_full",
    "maxParticipants cannot be lower than the number of participants already joined": (
        "capacity_below_joined"
    ),
    "Guest access is not allowed": "guests_not_allowed",
    "You have been removed from this room": "removed_from_room",
    "You are not in this room": "not_in_room",
    "Chat is disabled in this room": "chat_disabled",
    "Participant is not waiting": "participant_not_waiting",
    "Only the host can mute participants": "not_host",
    "Screen sharing is disabled in this room": "screen_share_disabled",
    # Meeting service: error frames on the room WebSocket
    "Invalid message": "invalid_message",
    "Too many messages": "too_many_messages",
    "Signal data is larger than 65536 bytes": "signal_too_large",
}

# Messages with a variable part, tried in order after the exact ones.
PATTERNS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"maximum number of public rooms reached \(\d+\)\. .*"),
        "public_room_quota_reached",
        "maximum number of public rooms reached (N). Please create a private room ...",
    ),
    (
        re.compile(r"Failed to generate unique room code after \d+ attempts"),
        "room_codes_exhausted",
        "Failed to generate unique room code after N attempts",
    ),
    (re.compile(r".+ unavailable"), "upstream_unavailable", "<service> unavailable"),
    (re.compile(r".+ timed out"), "upstream_timeout", "<service> timed out"),
    (re.compile(r".+ busy"), "upstream_busy", "<service> busy"),
)

# A validation failure names each field in `details`; its summary varies with the fields.
INVALID_FIELDS = "invalid_fields"


def status_code(status: int) -> str:
    """The code of an HTTP status, for an error the framework raised on its own:
    413 -> "request_entity_too_large"."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


def code_of(status: int, message: str, *, validation: bool = False) -> str | None:
    """The code for `message`; None when the table has none (the caller falls back to
    the status's code, and says so in the log)."""
    code = CODES.get(message)
    if code is not None:
        return code
    for pattern, pattern_code, _ in PATTERNS:
        if pattern.fullmatch(message):
            return pattern_code
    if validation:
        return INVALID_FIELDS
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return None
    return status_code(status) if message == phrase.lower() else None


def render() -> str:
    """docs/errors.md: the table of codes, one row per code."""
    messages: dict[str, list[str]] = {}
    for message, code in CODES.items():
        messages.setdefault(code, []).append(f"`{message}`")
    for _, code, shape in PATTERNS:
        messages.setdefault(code, []).append(f"`{shape}`")
    messages.setdefault(INVALID_FIELDS, []).append("a validation summary, with `details`")
    lines = [
        "# Error codes",
        "",
        "Every error any process answers is a JSON object with a human-readable `error`",
        "and a stable machine `code` (and, for validation errors, `details`):",
        "",
        '    {"error": "Room is full", "code": "room_full"}',
        "",
        "Branch on `code`; `error` may be reworded. An error the HTTP layer raises itself",
        "(for instance 408) carries its status's name as the code, such as",
        "`request_timeout`. This page is generated from `shared/error_codes.py`",
        "(`python -m shared.error_codes > docs/errors.md`); a test keeps the two equal.",
        "",
        "| code | messages |",
        "|---|---|",
    ]
    for code in sorted(messages):
        lines.append(f"| `{code}` | {'<br>'.join(messages[code])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
