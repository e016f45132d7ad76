"""The gateway's Ed25519 signing key, its JWKS, and the access tokens it signs."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth import ALGORITHM, Role

log = logging.getLogger(__name__)

KEY_FILE_NAME = "jwt_signing_key.pem"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SigningKey:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._x = _b64url(raw)
        # RFC 7638 thumbprint: the key id changes exactly when the key does.
        canonical = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": self._x}, separators=(",", ":")
        )
        self.kid = _b64url(hashlib.sha256(canonical.encode()).digest())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: str | bytes) -> SigningKey:
        key = serialization.load_pem_private_key(
            pem.encode() if isinstance(pem, str) else pem, None
        )
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": self._x,
                    "kid": self.kid,
                    "use": "sig",
                    "alg": ALGORITHM,
                }
            ]
        }

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})


def load_signing_key(
    *, pem: str | None, pem_file: Path | None, key_dir: Path, development: bool
) -> SigningKey:
    if pem:
        return SigningKey.from_pem(pem)
    if pem_file is not None:
        return SigningKey.from_pem(pem_file.read_bytes())
    if not development:
        raise RuntimeError("set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE in production")
    path = key_dir / KEY_FILE_NAME
    if not path.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        key = SigningKey.generate()
        # Written under a temporary name and linked into place, so that two
        # processes starting together agree on one key.
        tmp = key_dir / f".{KEY_FILE_NAME}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.to_pem())
        try:
            os.link(tmp, path)
            log.info("generated a development signing key", extra={"path": str(path)})
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return SigningKey.from_pem(path.read_bytes())


class TokenIssuer:
    def __init__(self, key: SigningKey, *, issuer: str, audience: str) -> None:
        self.key = key
        self.issuer = issuer
        self.audience = audience

    def access_token(
        self,
        *,
        subject: str,
        username: str | None,
        name: str,
        picture: str | None,
        role: Role,
        ttl_s: int,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": subject,
            "name": name,
            "role": role,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl_s,
            "jti": secrets.token_urlsafe(16),
        }
        if username is not None:
            claims["preferred_username"] = username
        if picture:
            claims["picture"] = picture
        return self.key.sign(claims)


def main() -> None:
    """`python -m gateway.keys PATH`: write a new signing key for production use."""
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m gateway.keys PATH")
    path = Path(sys.argv[1])
    if path.exists():
        sys.exit(f"{path} exists; not overwriting a signing key")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(SigningKey.generate().to_pem())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
