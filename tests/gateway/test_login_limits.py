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


async def test_registrations_are_limited_per_address(gateway_factory, echo, db):
    gateway = await gateway_factory(
        str(echo.server.make_url("")), register_max_per_address=3, trusted_proxies="127.0.0.1"
    )
    # Refusals (a taken name) count too: each attempt costs a bcrypt hash.
    for name in ("ann", "ann", "bob"):
        r = await gateway.post(
            "/auth/register",
            json={"username": name, "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.5"},
        )
        assert r.status in (201, 409)
    r = await gateway.post(
        "/auth/register",
        json={"username": "cat", "password": PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.5"},
    )
    assert r.status == 429
    assert r.content_type == "application/json"
    assert (await r.json())["error"] == "too many registrations"
    assert 1 <= int(r.headers["Retry-After"]) <= 3600
    assert await db.fetchval("SELECT count(*) FROM gateway.users WHERE username = 'cat'") == 0
    # Another address has its own budget.
    r = await gateway.post(
        "/auth/register",
        json={"username": "cat", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert r.status == 201


async def test_guest_tokens_are_limited_per_address(gateway_factory, echo):
    gateway = await gateway_factory(
        str(echo.server.make_url("")), guest_max_per_address=2, guest_window_s=600
    )
    for _ in range(2):
        r = await gateway.post("/auth/guest", json={"displayName": "Visitor"})
        assert r.status == 201
    r = await gateway.post("/auth/guest", json={"displayName": "Visitor"})
    assert r.status == 429
    assert (await r.json())["error"] == "too many guest tokens"
    assert 1 <= int(r.headers["Retry-After"]) <= 600


async def test_simultaneous_guest_requests_cannot_exceed_the_limit(gateway_factory, echo):
    import asyncio

    gateway = await gateway_factory(str(echo.server.make_url("")), guest_max_per_address=5)
    responses = await asyncio.gather(
        *(gateway.post("/auth/guest", json={"displayName": "V"}) for _ in range(20))
    )
    assert sorted(r.status for r in responses) == [201] * 5 + [429] * 15
