"""The verified-token cache never outlives a token nor accepts a changed one."""

import pytest

from gateway.keys import SigningKey, TokenIssuer
from shared.auth import KeySet, TokenVerifier
from shared.errors import ApiError
from tests.conftest import AUDIENCE, ISSUER


@pytest.fixture
def key():
    return SigningKey.generate()


def token_for(key, ttl_s=900, name="u"):
    issuer = TokenIssuer(key, issuer=ISSUER, audience=AUDIENCE)
    return issuer.access_token(
        subject="s1", username=name, name=name, picture=None, role="user", ttl_s=ttl_s
    )


async def test_a_cached_token_is_verified_afresh_once_past_its_exp(key, monkeypatch):
    verifier = TokenVerifier(KeySet(key.jwks()), issuer=ISSUER, audience=AUDIENCE)
    verified = []
    real_verify = verifier.verify

    async def counting_verify(token):
        verified.append(token)
        return await real_verify(token)

    monkeypatch.setattr(verifier, "verify", counting_verify)
    token = token_for(key, ttl_s=60)
    await verifier.identify(token)
    await verifier.identify(token)
    assert len(verified) == 1
    import shared.auth

    real_time = shared.auth.time.time
    monkeypatch.setattr(shared.auth.time, "time", lambda: real_time() + 3600)
    await verifier.identify(token)
    assert len(verified) == 2


async def test_a_token_with_one_changed_character_is_verified_afresh(key):
    verifier = TokenVerifier(KeySet(key.jwks()), issuer=ISSUER, audience=AUDIENCE)
    token = token_for(key)
    await verifier.identify(token)
    forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(ApiError):
        await verifier.identify(forged)


async def test_the_cache_is_bounded(key):
    verifier = TokenVerifier(KeySet(key.jwks()), issuer=ISSUER, audience=AUDIENCE, cache_size=3)
    for i in range(10):
        await verifier.identify(token_for(key, name=f"user{i}"))
    assert len(verifier._verified) == 3
