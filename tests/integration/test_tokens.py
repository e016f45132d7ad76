"""Forged, expired and misdirected tokens are refused at the gateway and at
each service reached directly."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.keys import SigningKey, TokenIssuer
from tests.conftest import AUDIENCE, ISSUER


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides):
    now = int(time.time())
    base = {
        "sub": "u_mallory",
        "preferred_username": "mallory",
        "name": "mallory",
        "role": "user",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "jti": "x",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def unsigned(header: dict, payload: dict) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"


def forgeries(key: SigningKey, valid: str) -> dict[str, str]:
    other = SigningKey.generate()
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims())
    hs_signature = b64(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest())
    header, payload, signature = valid.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["sub"] = "u_admin"
    other_with_our_kid = other.sign(claims())
    _, other_payload, other_signature = other_with_our_kid.split(".")
    return {
        "alg none": unsigned({"alg": "none", "typ": "JWT", "kid": key.kid}, claims()) + ".",
        "another key": other.sign(claims()),
        "another key, our kid": f"{valid.split('.')[0]}.{other_payload}.{other_signature}",
        "HS256 with the public key as secret": f"{hs_input}.{hs_signature}",
        "expired": key.sign(claims(iat=int(time.time()) - 1200, exp=int(time.time()) - 600)),
        "wrong audience": key.sign(claims(aud="someone-else")),
        "wrong issuer": key.sign(claims(iss="https://evil.example")),
        "no exp": key.sign(claims(exp=None)),
        "no iat": key.sign(claims(iat=None)),
        "no sub": key.sign(claims(sub=None)),
        "tampered payload": f"{header}.{b64(json.dumps(tampered).encode())}.{signature}",
        "garbage": "not.a.token",
        "empty bearer": "",
    }


@pytest.fixture
async def targets(gateway_stack, aiohttp_client):
    chat = await aiohttp_client(gateway_stack.chat)
    meeting = await aiohttp_client(gateway_stack.meeting)
    return [
        (gateway_stack.client, "/auth/me"),
        (gateway_stack.client, "/api/rooms"),
        (gateway_stack.client, "/rooms"),
        (chat, "/api/rooms"),
        (meeting, "/rooms"),
    ]


async def test_bad_tokens_are_refused_everywhere(targets, signing_key, issuer, make_token):
    valid = make_token("mallory")
    for name, token in forgeries(signing_key, valid).items():
        for client, path in targets:
            for header in (token, f"Bearer {token}"):
                r = await client.get(path, headers={"Authorization": header})
                assert r.status == 401, (name, path, r.status)
                assert await r.json() == {"error": "unauthorized", "code": "unauthorized"}, (
                    name,
                    path,
                )


async def test_missing_token_is_refused_everywhere(targets):
    for client, path in targets:
        r = await client.get(path)
        assert r.status == 401, path
        assert await r.json() == {"error": "unauthorized", "code": "unauthorized"}


async def test_the_valid_token_passes_everywhere_in_both_forms(targets, gateway_stack, make_token):
    register = await gateway_stack.client.post(
        "/auth/register", json={"username": "mallory", "password": "12345678"}
    )
    token = (await register.json())["access_token"]
    for client, path in targets:
        for header in (token, f"Bearer {token}"):
            r = await client.get(path, headers={"Authorization": header})
            assert r.status == 200, (path, await r.text())


async def test_a_token_from_a_rotated_out_key_is_refused(targets, signing_key):
    stale = TokenIssuer(SigningKey.generate(), issuer=ISSUER, audience=AUDIENCE)
    token = stale.access_token(
        subject="u1", username="u1", name="u1", picture=None, role="user", ttl_s=600
    )
    for client, path in targets:
        assert (await client.get(path, headers={"Authorization": token})).status == 401
