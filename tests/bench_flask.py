"""The chat document's origin as `make bench`'s reference: a minimal Flask app.

The chat API comes from Mirage's documentation (/work/shared/seeds/): an
`Authorization` token checked on every request and `{"error": ...}` bodies.
The issue names the origin a Flask app; this is the smallest faithful one for
the two endpoints the bench compares, on the same Postgres and the same tables
(the chat service's own migration, applied to a schema of its own): the token
looked up in a table, the membership check, the insert or the page, one
transaction, one connection per thread from a psycopg pool. It runs under
gunicorn, 2 workers (one per core) of 4 threads each, with an access log like
ours. Only the bench uses it.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from flask import Flask, jsonify, request
from psycopg_pool import ConnectionPool

app = Flask(__name__)
_pool: ConnectionPool | None = None
_lock = threading.Lock()

MEMBERSHIP = (
    "SELECT r.is_private,"
    " EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.username = %s)"
    " AS is_member"
    " FROM rooms r WHERE r.id = %s"
)


def pool() -> ConnectionPool:
    """Opened in each worker after gunicorn forks it."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ConnectionPool(
                os.environ["FLASK_REF_DSN"],
                min_size=1,
                max_size=int(os.environ.get("FLASK_REF_THREADS", "4")),
                kwargs={"options": "-c search_path=flaskref"},
            )
        return _pool


def error(status: int, message: str) -> Any:
    return jsonify({"error": message}), status


def member(conn: Any, room_id: int) -> tuple[str, Any]:
    """The caller's username, or the refusal: no token, no room, not a member."""
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    row = conn.execute("SELECT username FROM tokens WHERE token = %s", (token,)).fetchone()
    if row is None:
        return "", error(401, "unauthorized")
    room = conn.execute(MEMBERSHIP, (row[0], room_id)).fetchone()
    if room is None:
        return "", error(404, "room not found")
    if not room[1]:
        return "", error(403, "you are not in this room")
    return row[0], None


@app.post("/api/send_room_message")
def send_room_message() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, "invalid fields received")
    room_id, text = body.get("room_id"), body.get("message")
    if type(room_id) is not int or not isinstance(text, str) or not 0 < len(text) <= 4000:
        return error(400, "invalid fields received")
    with pool().connection() as conn, conn.transaction():
        user, refused = member(conn, room_id)
        if refused is not None:
            return refused
        message_id, created_at = conn.execute(
            "INSERT INTO room_messages (room_id, username, body) VALUES (%s, %s, %s)"
            " RETURNING id, created_at",
            (room_id, user, text),
        ).fetchone()
    return jsonify(
        {"message": "sent", "message_id": message_id, "created_at": created_at.isoformat()}
    ), 201


@app.get("/api/get_room_messages")
def get_room_messages() -> Any:
    try:
        room_id = int(request.args["room_id"])
        limit = min(int(request.args.get("limit", "50")), 100)
        before = int(request.args.get("before", str(2**63 - 1)))
    except (KeyError, ValueError):
        return error(400, "invalid fields received")
    with pool().connection() as conn, conn.transaction():
        _, refused = member(conn, room_id)
        if refused is not None:
            return refused
        rows = conn.execute(
            "SELECT id, room_id, username, body, created_at FROM room_messages"
            " WHERE room_id = %s AND id < %s ORDER BY id DESC LIMIT %s",
            (room_id, before, limit + 1),
        ).fetchall()
    messages = [
        {
            "message_id": r[0],
            "room_id": r[1],
            "username": r[2],
            "message": r[3],
            "created_at": r[4].isoformat(),
        }
        for r in rows[:limit]
    ]
    next_before = messages[-1]["message_id"] if len(rows) > limit else None
    return jsonify({"messages": messages, "next_before": next_before})
