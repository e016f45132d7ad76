"""Nothing of a signal is ever logged: not when relayed, not when relaying fails."""

from __future__ import annotations

import logging

from meeting_service import signals_store
from tests.meeting_service.conftest import create_room, join
from tests.meeting_service.sockets import next_of_type, room_socket

SECRET = "a=candidate:1 1 udp 2122260223 203.0.113.7 61234 typ host ufrag-SECRET-MARK"


async def test_signals_never_reach_the_logs(api, make_token, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    alice, bob = make_token("alice"), make_token("bob")
    room = await create_room(api, alice)
    bob_p = (await join(api, bob, room["code"]))["participant"]
    small = {"candidate": SECRET, "sdpMid": "0"}
    large = {"type": "offer", "sdp": (SECRET + "\r\n") * 200}
    async with (
        room_socket(api, room["id"], alice) as (alice_ws, _),
        room_socket(api, room["id"], bob) as (bob_ws, _),
    ):
        for data in (small, large):
            await alice_ws.send_json(
                {"type": "signal", "to": bob_p["id"], "kind": "candidate", "data": data}
            )
            assert (await next_of_type(bob_ws, "signal"))["data"] == data

        async def failing(*args, **kwargs):
            raise RuntimeError("the database went away")

        monkeypatch.setattr(signals_store, "send_signal", failing)
        await alice_ws.send_json(
            {"type": "signal", "to": bob_p["id"], "kind": "candidate", "data": small, "ref": 3}
        )
        assert await next_of_type(alice_ws, "error") == {
            "type": "error",
            "error": "internal error",
            "code": "internal_error",
            "ref": 3,
        }
    failures = [r for r in caplog.records if r.getMessage() == "room socket frame failed"]
    assert len(failures) == 1
    logged = "\n".join(
        f"{record.getMessage()} {record.__dict__} {record.exc_text or ''}"
        for record in caplog.records
    )
    assert "SECRET-MARK" not in logged
    assert "203.0.113.7" not in logged
