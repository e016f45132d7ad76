"""The verified-token cache never outlives a token nor accepts a changed one."""

import pytest

from gateway.keys import SigningKey, TokenIssuer
from shared.auth import KeySet, TokenVerifier
from shared.errors import ApiError
from tests.conftest import AUDIENCE, ISSUER


@pytest.fixture
def key():
    return SigningKey.generate()


def counted_verifications(verifier, monkeypatch):
    """The tokens `verifier.verify` is asked to check (a signature each), in order."""
    verified = []
    real_verify = verifier.verify

    async def counting_verify(token):
        verified.append(token)
        return await real_verify(token)

    monkeypatch.setattr(verifier, "verify", counting_verify)
    return verified


def token_for(key, ttl_s=900, name="u"):
    issuer = TokenIssuer(key, issuer=ISSUER, audience=AUDIENCE)
    return issuer.access_token(
        subject="s1", username=name, name=name, picture=None, role="user", ttl_s=ttl_s
    )


async def test_a_cached_token_is_verified_afresh_once_past_its_exp(key, monkeypatch):
    verifier = TokenVerifier(KeySet(key.jwks()), issuer=ISSUER, audience=AUDIENCE)
    verified = counted_verifications(verifier, monkeypatch)
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


async def test_a_token_identify_now_refused_is_not_verified_again_by_identify(key, monkeypatch):
    """The gateway's edge tries identify_now, then leaves a refused token to
    aiohttp's route (identify): one signature check for that request, not two."""
    verifier = TokenVerifier(KeySet(key.jwks()), issuer=ISSUER, audience=AUDIENCE)
    verified = counted_verifications(verifier, monkeypatch)
    token = token_for(key)
    forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert verifier.identify_now(forged) is None
    with pytest.raises(ApiError) as refused:
        await verifier.identify(forged)
    assert (refused.value.status, refused.value.message) == (401, "unauthorized")
    assert verified == []
    # Remembered for that one hand-off only: the next attempt is verified again.
    with pytest.raises(ApiError):
        await verifier.identify(forged)
    assert verified == [forged]


async def test_a_refusal_is_remembered_briefly(key, monkeypatch):
    """Past REFUSAL_MEMORY_S a refused token is verified afresh (a token refused for
    an iat just ahead of this clock is valid a moment later)."""
    import shared.auth

    verifier = TokenVerifier(KeySet(key.jwks()), issuer=ISSUER, audience=AUDIENCE)
    verified = counted_verifications(verifier, monkeypatch)
    token = token_for(key)
    forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert verifier.identify_now(forged) is None
    real_monotonic = shared.auth.time.monotonic
    later = shared.auth.REFUSAL_MEMORY_S + 0.001
    monkeypatch.setattr(shared.auth.time, "monotonic", lambda: real_monotonic() + later)
    with pytest.raises(ApiError):
        await verifier.identify(forged)
    assert verified == [forged]
