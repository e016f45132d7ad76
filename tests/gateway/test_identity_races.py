"""Logout racing a refresh of the same session: whichever wins, nothing of the
session survives both."""

from __future__ import annotations

import asyncio

PASSWORD = "correct horse battery"


async def test_logout_racing_refresh_leaves_no_live_token_of_the_family(gateway, db):
    r = await gateway.post("/auth/register", json={"username": "alice", "password": PASSWORD})
    assert r.status == 201
    first = (await r.json())["refresh_token"]
    assert (await gateway.post("/auth/logout", json={"refresh_token": first})).status == 204
    outcomes = set()
    for _ in range(5):
        sessions = []
        for _ in range(10):
            r = await gateway.post("/auth/login", json={"username": "alice", "password": PASSWORD})
            assert r.status == 200
            sessions.append((await r.json())["refresh_token"])

        async def race(token: str) -> tuple[int, int, str | None]:
            logout, refresh = await asyncio.gather(
                gateway.post("/auth/logout", json={"refresh_token": token}),
                gateway.post("/auth/refresh", json={"refresh_token": token}),
            )
            rotated = (await refresh.json())["refresh_token"] if refresh.status == 200 else None
            return logout.status, refresh.status, rotated

        for logout, refresh, rotated in await asyncio.gather(*(race(t) for t in sessions)):
            outcomes.add((logout, refresh))
            # The logout always takes effect: the session was live when it was asked.
            assert logout == 204
            assert refresh in (200, 401)
            if rotated is not None:
                r = await gateway.post("/auth/refresh", json={"refresh_token": rotated})
                assert r.status == 401
    live = await db.fetchval(
        "SELECT count(*) FROM gateway.refresh_tokens"
        " WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > now()"
    )
    assert live == 0
    print("outcomes seen:", sorted(outcomes))
