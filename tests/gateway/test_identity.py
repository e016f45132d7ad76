import asyncio
import logging
import re

import jwt
import pytest

from tests.conftest import AUDIENCE, ISSUER

ID = re.compile(r"^c[0-9a-z]{24}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PASSWORD = "correct horse battery"


async def register(client, username="alice", password=PASSWORD, **extra):
    return await client.post(
        "/auth/register", json={"username": username, "password": password, **extra}
    )


async def test_register_returns_the_user_and_a_token_pair(gateway, db):
    r = await register(
        gateway,
        email="alice@example.com",
        displayName="Alice A.",
        avatarUrl="https://img.example/a.png",
    )
    assert r.status == 201
    body = await r.json()
    assert set(body) == {"user", "access_token", "token_type", "expires_in", "refresh_token"}
    user = body["user"]
    assert ID.match(user["id"])
    assert TIMESTAMP.match(user.pop("createdAt"))
    assert user == {
        "id": user["id"],
        "username": "alice",
        "email": "alice@example.com",
        "displayName": "Alice A.",
        "avatarUrl": "https://img.example/a.png",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    stored = await db.fetchrow("SELECT password_hash FROM gateway.users WHERE id = $1", user["id"])
    assert stored["password_hash"].startswith("$2b$")
    assert PASSWORD not in stored["password_hash"]


async def test_access_token_claims(gateway, signing_key):
    body = await (await register(gateway, avatarUrl="https://img.example/a.png")).json()
    claims = jwt.decode(
        body["access_token"],
        signing_key.private_key.public_key(),
        algorithms=["EdDSA"],
        audience=AUDIENCE,
    )
    assert claims["sub"] == body["user"]["id"]
    assert claims["preferred_username"] == "alice"
    assert claims["name"] == "alice"
    assert claims["picture"] == "https://img.example/a.png"
    assert claims["role"] == "user"
    assert claims["iss"] == ISSUER
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]
    assert jwt.get_unverified_header(body["access_token"])["kid"] == signing_key.kid


async def test_display_name_defaults_to_the_username_and_optional_fields_to_null(gateway):
    user = (await (await register(gateway, "bob")).json())["user"]
    assert user["displayName"] == "bob"
    assert user["email"] is None
    assert user["avatarUrl"] is None


async def test_username_is_unique_regardless_of_case(gateway):
    assert (await register(gateway, "Alice")).status == 201
    r = await register(gateway, "aLICE")
    assert r.status == 409
    assert await r.json() == {"error": "username already taken", "code": "username_taken"}


async def test_email_is_unique_regardless_of_case(gateway):
    assert (await register(gateway, "one", email="x@example.com")).status == 201
    r = await register(gateway, "two", email="X@Example.com")
    assert r.status == 409
    assert await r.json() == {"error": "email already registered", "code": "email_taken"}


async def test_simultaneous_registrations_of_one_name_create_one_user(gateway, db):
    responses = await asyncio.gather(*(register(gateway, "race") for _ in range(10)))
    assert sorted(r.status for r in responses) == [201] + [409] * 9
    assert await db.fetchval("SELECT count(*) FROM gateway.users") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ab", "password": PASSWORD}, "username"),
        ({"username": "a" * 33, "password": PASSWORD}, "username"),
        ({"username": "no spaces", "password": PASSWORD}, "username"),
        ({"username": 123, "password": PASSWORD}, "username"),
        ({"password": PASSWORD}, "username"),
        ({"username": "alice", "password": "short"}, "password"),
        ({"username": "alice", "password": "é" * 37}, "password"),  # 74 bytes
        ({"username": "alice"}, "password"),
        ({"username": "alice", "password": PASSWORD, "email": "not-an-email"}, "email"),
        ({"username": "alice", "password": PASSWORD, "displayName": ""}, "displayName"),
        ({"username": "alice", "password": PASSWORD, "displayName": "x" * 51}, "displayName"),
        ({"username": "alice", "password": PASSWORD, "avatarUrl": "ftp://x/y.png"}, "avatarUrl"),
        ({"username": "alice", "password": PASSWORD, "admin": True}, "admin"),
    ],
)
async def test_register_validation_names_the_field(gateway, db, body, field):
    r = await gateway.post("/auth/register", json=body)
    assert r.status == 400
    answer = await r.json()
    assert answer["error"].startswith(f"{field}: ")
    assert answer["code"] == "invalid_fields"
    assert [d["field"] for d in answer["details"]] == [field]
    assert await db.fetchval("SELECT count(*) FROM gateway.users") == 0


async def test_a_72_byte_password_is_accepted(gateway):
    assert (await register(gateway, password="é" * 36)).status == 201


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b"{bad"])
async def test_a_body_that_is_not_a_json_object_is_400(gateway, raw):
    r = await gateway.post("/auth/register", data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert await r.json() == {"error": "request body must be a JSON object", "code": "invalid_body"}


async def test_login_by_username_or_email(gateway):
    await register(gateway, email="alice@example.com")
    for credentials in ({"username": "ALICE"}, {"email": "Alice@Example.com"}):
        r = await gateway.post("/auth/login", json={**credentials, "password": PASSWORD})
        assert r.status == 200
        body = await r.json()
        assert body["user"]["username"] == "alice"
        assert set(body) == {"user", "access_token", "token_type", "expires_in", "refresh_token"}


async def test_wrong_password_and_unknown_user_answer_alike(gateway):
    await register(gateway)
    wrong = await gateway.post(
        "/auth/login", json={"username": "alice", "password": "wrong password"}
    )
    unknown = await gateway.post("/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert wrong.status == unknown.status == 401
    assert (
        await wrong.json()
        == await unknown.json()
        == {"error": "invalid credentials", "code": "invalid_credentials"}
    )


@pytest.mark.parametrize("length", [73, 200, 1024])
async def test_a_password_longer_than_bcrypt_reads_is_invalid_credentials(
    gateway, monkeypatch, length
):
    import bcrypt

    checks = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed: bytes) -> bool:
        checks.append(len(password))
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)
    await register(gateway)
    # The first 72 bytes are the real password: only the rest makes it wrong.
    too_long = PASSWORD + "x" * (length - len(PASSWORD))
    for username in ("alice", "nobody"):
        r = await gateway.post("/auth/login", json={"username": username, "password": too_long})
        assert r.status == 401
        assert await r.json() == {"error": "invalid credentials", "code": "invalid_credentials"}
    # Each refusal cost a bcrypt check, like any wrong password: the time does not tell.
    assert checks == [72, 72]


async def test_login_without_a_name_is_400(gateway):
    r = await gateway.post("/auth/login", json={"password": PASSWORD})
    assert r.status == 400


async def test_login_attempts_are_limited_per_username(gateway):
    await register(gateway)
    for _ in range(5):
        r = await gateway.post(
            "/auth/login", json={"username": "alice", "password": "wrong password"}
        )
        assert r.status == 401
    r = await gateway.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.status == 429
    assert await r.json() == {"error": "too many login attempts", "code": "too_many_login_attempts"}
    assert 1 <= int(r.headers["Retry-After"]) <= 900


async def test_a_successful_login_clears_the_username_failures(gateway):
    await register(gateway)
    for _ in range(4):
        await gateway.post("/auth/login", json={"username": "alice", "password": "wrong password"})
    assert (
        await gateway.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    ).status == 200
    for _ in range(4):
        r = await gateway.post(
            "/auth/login", json={"username": "alice", "password": "wrong password"}
        )
        assert r.status == 401


async def test_login_attempts_are_limited_per_address(gateway_factory, echo):
    gateway = await gateway_factory(str(echo.server.make_url("")), login_max_failures_per_address=3)
    for name in ("u1", "u2", "u3"):
        r = await gateway.post("/auth/login", json={"username": name, "password": "whatever1"})
        assert r.status == 401
    r = await gateway.post("/auth/login", json={"username": "u4", "password": "whatever1"})
    assert r.status == 429


async def test_the_login_limit_holds_across_replicas(gateway_factory, echo):
    url = str(echo.server.make_url(""))
    replicas = [await gateway_factory(url), await gateway_factory(url)]
    await register(replicas[0])
    for i in range(5):
        r = await replicas[i % 2].post(
            "/auth/login", json={"username": "alice", "password": "nope nope"}
        )
        assert r.status == 401
    r = await replicas[1].post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.status == 429


async def test_simultaneous_attempts_cannot_exceed_the_limit(gateway):
    await register(gateway)
    responses = await asyncio.gather(
        *(
            gateway.post("/auth/login", json={"username": "alice", "password": "nope nope"})
            for _ in range(20)
        )
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [401] * 5 + [429] * 15


async def test_refresh_rotates_and_the_old_token_stops_working(gateway):
    first = await (await register(gateway)).json()
    r = await gateway.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status == 200
    second = await r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user"]["username"] == "alice"
    r = await gateway.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status == 401
    assert await r.json() == {"error": "unauthorized", "code": "unauthorized"}


async def test_reusing_a_rotated_token_revokes_its_family(gateway):
    first = await (await register(gateway)).json()
    second = await (
        await gateway.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    # Someone replays the spent token: the live one, issued from it, dies too.
    assert (
        await gateway.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).status == 401
    r = await gateway.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status == 401


async def test_other_sessions_survive_a_revoked_family(gateway):
    first = await (await register(gateway)).json()
    other = await (
        await gateway.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    ).json()
    await gateway.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    await gateway.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    r = await gateway.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert r.status == 200


async def test_simultaneous_refreshes_with_one_token_yield_one_new_pair(gateway):
    first = await (await register(gateway)).json()
    responses = await asyncio.gather(
        *(
            gateway.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
            for _ in range(5)
        )
    )
    assert sorted(r.status for r in responses) == [200, 401, 401, 401, 401]


async def test_an_unknown_refresh_token_is_401(gateway):
    r = await gateway.post("/auth/refresh", json={"refresh_token": "made-up"})
    assert r.status == 401
    assert await r.json() == {"error": "unauthorized", "code": "unauthorized"}


async def test_logout_revokes_the_refresh_token(gateway):
    session = await (await register(gateway)).json()
    r = await gateway.post("/auth/logout", json={"refresh_token": session["refresh_token"]})
    assert r.status == 204
    assert (
        await gateway.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    ).status == 401
    r = await gateway.post("/auth/logout", json={"refresh_token": session["refresh_token"]})
    assert r.status == 401


async def test_me_returns_the_user(gateway):
    session = await (await register(gateway)).json()
    for header in (session["access_token"], f"Bearer {session['access_token']}"):
        r = await gateway.get("/auth/me", headers={"Authorization": header})
        assert r.status == 200
        assert await r.json() == session["user"]
    assert (await gateway.get("/auth/me")).status == 401


async def test_patch_me_changes_the_profile_and_new_tokens_carry_it(gateway, signing_key):
    session = await (await register(gateway, avatarUrl="https://img.example/old.png")).json()
    auth = {"Authorization": f"Bearer {session['access_token']}"}
    r = await gateway.patch("/auth/me", json={"displayName": "Alice Liddell"}, headers=auth)
    assert r.status == 200
    user = await r.json()
    assert user["displayName"] == "Alice Liddell"
    assert user["avatarUrl"] == "https://img.example/old.png"
    r = await gateway.patch("/auth/me", json={"avatarUrl": None}, headers=auth)
    assert (await r.json())["avatarUrl"] is None
    refreshed = await (
        await gateway.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    ).json()
    claims = jwt.decode(
        refreshed["access_token"],
        signing_key.private_key.public_key(),
        algorithms=["EdDSA"],
        audience=AUDIENCE,
    )
    assert claims["name"] == "Alice Liddell"
    assert "picture" not in claims


@pytest.mark.parametrize(
    "body",
    [
        {"displayName": ""},
        {"displayName": None},
        {"avatarUrl": "javascript:alert(1)"},
        {"username": "x"},
    ],
)
async def test_patch_me_validation(gateway, body):
    session = await (await register(gateway)).json()
    r = await gateway.patch(
        "/auth/me", json=body, headers={"Authorization": session["access_token"]}
    )
    assert r.status == 400
    me = await (
        await gateway.get("/auth/me", headers={"Authorization": session["access_token"]})
    ).json()
    assert me == session["user"]


async def test_guest_token(gateway, signing_key):
    r = await gateway.post("/auth/guest", json={"displayName": "Visitor"})
    assert r.status == 201
    body = await r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    claims = jwt.decode(
        body["access_token"],
        signing_key.private_key.public_key(),
        algorithms=["EdDSA"],
        audience=AUDIENCE,
    )
    assert claims["role"] == "guest"
    assert claims["name"] == "Visitor"
    assert "preferred_username" not in claims
    # A guest is not an account.
    r = await gateway.get("/auth/me", headers={"Authorization": body["access_token"]})
    assert r.status == 401


@pytest.mark.parametrize(
    "body", [{}, {"displayName": ""}, {"displayName": "x" * 51}, {"displayName": 5}]
)
async def test_guest_validation(gateway, body):
    assert (await gateway.post("/auth/guest", json=body)).status == 400


async def test_jwks_serves_the_public_key(gateway, signing_key):
    r = await gateway.get("/.well-known/jwks.json")
    assert r.status == 200
    assert await r.json() == signing_key.jwks()
    assert "d" not in (await r.json())["keys"][0]


async def test_passwords_never_appear_in_responses_or_logs(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "Sup3r-Secret-Passphrase"
    texts = []
    for r in (
        await register(gateway, "carol", password=secret),
        await gateway.post("/auth/login", json={"username": "carol", "password": secret}),
        await gateway.post("/auth/login", json={"username": "carol", "password": secret + "x"}),
        await gateway.post("/auth/register", json={"username": "c", "password": secret}),
    ):
        texts.append(await r.text())
    assert all(secret not in text for text in texts)
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert secret not in logged
    assert caplog.records  # the requests were logged, just not the password


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        (
            "/auth/register",
            b'{"username": "alice", "password": "12345678", "displayName": "a\\u0000b"}',
            "displayName",
        ),
        (
            "/auth/register",
            b'{"username": "alice", "password": "12345678", "email": "a\\u0000@b.co"}',
            "email",
        ),
        ("/auth/register", b'{"username": "alice", "password": "1234\\u00005678"}', "password"),
        (
            "/auth/register",
            b'{"username": "alice", "password": "12345678", "displayName": "\\ud800"}',
            "displayName",
        ),
        ("/auth/login", b'{"username": "al\\u0000ice", "password": "12345678"}', "username"),
        ("/auth/guest", b'{"displayName": "x\\u0000"}', "displayName"),
    ],
)
async def test_text_postgres_cannot_store_is_a_400_naming_the_field(gateway, db, path, raw, field):
    r = await gateway.post(path, data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert [d["field"] for d in (await r.json())["details"]] == [field]
    assert await db.fetchval("SELECT count(*) FROM gateway.users") == 0


async def test_deeply_nested_json_is_a_400_not_a_500(gateway):
    r = await gateway.post(
        "/auth/register", data=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert r.status == 400
    assert await r.json() == {"error": "request body must be a JSON object", "code": "invalid_body"}
