"""Key rotation: the JWKS publishes the key a rotation replaced, so tokens it
signed stay valid (at the gateway and at the services) until they expire."""

from __future__ import annotations

import json
import os
import stat

import jwt

from chat_service.app import create_app as create_chat
from chat_service.settings import ChatSettings
from gateway.app import create_app as create_gateway
from gateway.keys import KEY_FILE_NAME, SigningKey, load_key_ring, rotate_key_file
from gateway.settings import GatewaySettings

PASSWORD = "correct horse battery"


def settings_in(database_url: str, key_dir, **extra) -> GatewaySettings:
    return GatewaySettings(database_url=database_url, jwt_key_dir=key_dir, bcrypt_rounds=4, **extra)


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


async def test_tokens_signed_before_a_rotation_stay_valid_at_the_gateway_and_services(
    aiohttp_server, aiohttp_client, database_url, tmp_path
):
    before = await aiohttp_client(create_gateway(settings_in(database_url, tmp_path)))
    r = await before.post("/auth/register", json={"username": "alice", "password": PASSWORD})
    old_token = (await r.json())["access_token"]
    old_kid = kid_of(old_token)
    assert [
        k["kid"] for k in (await (await before.get("/.well-known/jwks.json")).json())["keys"]
    ] == [old_kid]

    old, new = rotate_key_file(tmp_path / KEY_FILE_NAME)
    assert old.kid == old_kid != new.kid
    assert (tmp_path / "jwt_signing_key.previous.pem").exists()

    # The gateway restarted after the rotation.
    gateway_server = await aiohttp_server(create_gateway(settings_in(database_url, tmp_path)))
    gateway = await aiohttp_client(gateway_server)
    jwks = await (await gateway.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [new.kid, old_kid]
    assert all("d" not in k for k in jwks["keys"])
    r = await gateway.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    new_token = (await r.json())["access_token"]
    assert kid_of(new_token) == new.kid

    # A service that fetches the JWKS from the gateway accepts both.
    jwks_url = str(gateway_server.make_url("/.well-known/jwks.json"))
    chat = await aiohttp_client(
        create_chat(ChatSettings(database_url=database_url, jwks=None, jwks_url=jwks_url))
    )
    for token in (old_token, new_token):
        r = await chat.get("/api/rooms", headers={"Authorization": token})
        assert r.status == 200, await r.text()
        r = await gateway.get("/auth/me", headers={"Authorization": token})
        assert r.status == 200

    # A second rotation drops the oldest key: its tokens are refused.
    rotate_key_file(tmp_path / KEY_FILE_NAME)
    again = await aiohttp_client(create_gateway(settings_in(database_url, tmp_path)))
    assert (await again.get("/auth/me", headers={"Authorization": old_token})).status == 401
    assert (await again.get("/auth/me", headers={"Authorization": new_token})).status == 200


def test_rotation_keeps_the_file_mode_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "signing.pem"
    path.write_bytes(SigningKey.generate().to_pem())
    os.chmod(path, 0o640)
    old, new = rotate_key_file(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.pem", "signing.previous.pem"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "signing.previous.pem").stat().st_mode) == 0o640
    ring = load_key_ring(
        pem=None,
        pem_file=path,
        previous_pem=None,
        previous_pem_file=None,
        key_dir=tmp_path,
        development=False,
    )
    assert (ring.current.kid, ring.previous and ring.previous.kid) == (new.kid, old.kid)


def test_an_inline_key_names_its_previous_key_explicitly(tmp_path):
    current, previous = SigningKey.generate(), SigningKey.generate()
    ring = load_key_ring(
        pem=current.to_pem().decode(),
        pem_file=None,
        previous_pem=previous.to_pem().decode(),
        previous_pem_file=None,
        key_dir=tmp_path,
        development=False,
    )
    assert [k["kid"] for k in ring.jwks()["keys"]] == [current.kid, previous.kid]
    alone = load_key_ring(
        pem=current.to_pem().decode(),
        pem_file=None,
        previous_pem=None,
        previous_pem_file=None,
        key_dir=tmp_path,
        development=False,
    )
    assert json.dumps(alone.jwks()) == json.dumps(current.jwks())
