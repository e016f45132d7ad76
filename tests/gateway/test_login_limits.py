"""The login limit counts per account, whichever of its names is typed."""

from __future__ import annotations

PASSWORD = "correct horse battery"


async def test_a_username_and_its_email_share_one_budget(gateway):
    body = {"username": "alice", "password": PASSWORD, "email": "alice@example.com"}
    assert (await gateway.post("/auth/register", json=body)).status == 201
    attempts = [{"username": "alice"}, {"email": "Alice@Example.com"}, {"username": "ALICE"}]
    for i in range(5):
        r = await gateway.post("/auth/login", json={**attempts[i % 3], "password": "wrong pass"})
        assert r.status == 401
    for name in attempts:
        r = await gateway.post("/auth/login", json={**name, "password": PASSWORD})
        assert r.status == 429
        assert (await r.json())["error"] == "too many login attempts"


async def test_a_success_by_email_clears_the_failures_by_username(gateway):
    body = {"username": "alice", "password": PASSWORD, "email": "alice@example.com"}
    assert (await gateway.post("/auth/register", json=body)).status == 201
    for _ in range(4):
        r = await gateway.post("/auth/login", json={"username": "alice", "password": "wrong pass"})
        assert r.status == 401
    r = await gateway.post("/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
    assert r.status == 200
    for _ in range(4):
        r = await gateway.post("/auth/login", json={"username": "alice", "password": "wrong pass"})
        assert r.status == 401


async def test_unknown_names_are_limited_alike(gateway):
    for _ in range(5):
        r = await gateway.post("/auth/login", json={"username": "nobody", "password": "wrong pass"})
        assert r.status == 401
    r = await gateway.post("/auth/login", json={"username": "nobody", "password": "wrong pass"})
    assert r.status == 429
