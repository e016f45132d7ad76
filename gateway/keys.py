"""The gateway's Ed25519 signing key, its JWKS, and the access tokens it signs."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.settings import GatewaySettings
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


def previous_key_path(path: Path) -> Path:
    """Where a rotation keeps the key it replaced: beside it, `.previous` before the suffix."""
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def current_key_path(pem_file: Path | None, key_dir: Path) -> Path:
    return pem_file if pem_file is not None else key_dir / KEY_FILE_NAME


def _write_new(path: Path, pem: bytes) -> Path:
    """`pem` in a private temporary file beside `path`, to be linked or renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


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
        # Linked into place, so that two processes starting together agree on one key.
        tmp = _write_new(path, SigningKey.generate().to_pem())
        try:
            os.link(tmp, path)
            log.info("generated a development signing key", extra={"path": str(path)})
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return SigningKey.from_pem(path.read_bytes())


@dataclass(frozen=True)
class KeyRing:
    """The key that signs, and the one it replaced: published until the tokens it
    signed have expired, so that a rotation logs no one out."""

    current: SigningKey
    previous: SigningKey | None = None

    def jwks(self) -> dict[str, Any]:
        keys = self.current.jwks()["keys"]
        if self.previous is not None and self.previous.kid != self.current.kid:
            keys = keys + self.previous.jwks()["keys"]
        return {"keys": keys}


def load_key_ring(
    *,
    pem: str | None,
    pem_file: Path | None,
    previous_pem: str | None,
    previous_pem_file: Path | None,
    key_dir: Path,
    development: bool,
) -> KeyRing:
    current = load_signing_key(pem=pem, pem_file=pem_file, key_dir=key_dir, development=development)
    previous = None
    if previous_pem:
        previous = SigningKey.from_pem(previous_pem)
    elif previous_pem_file is not None:
        previous = SigningKey.from_pem(previous_pem_file.read_bytes())
    elif not pem:
        beside = previous_key_path(current_key_path(pem_file, key_dir))
        if beside.exists():
            previous = SigningKey.from_pem(beside.read_bytes())
    return KeyRing(current, previous)


def key_ring_of(settings: GatewaySettings) -> KeyRing:
    return load_key_ring(
        pem=settings.jwt_private_key,
        pem_file=settings.jwt_private_key_file,
        previous_pem=settings.jwt_previous_private_key,
        previous_pem_file=settings.jwt_previous_private_key_file,
        key_dir=settings.jwt_key_dir,
        development=settings.environment == "development",
    )


def rotate_key_file(path: Path, previous_path: Path | None = None) -> tuple[SigningKey, SigningKey]:
    """A new signing key at `path`; the one it held moves to `previous_path` (by
    default beside it). Each file is replaced atomically, the previous one first:
    interrupted at any point, the files hold a key ring that verifies every token
    issued so far. Answers (old key, new key)."""
    previous_path = previous_path or previous_key_path(path)
    old_pem = path.read_bytes()
    old = SigningKey.from_pem(old_pem)
    new = SigningKey.generate()
    mode = stat.S_IMODE(path.stat().st_mode)  # whoever could read the key still can
    for target, pem in ((previous_path, old_pem), (path, new.to_pem())):
        tmp = _write_new(target, pem)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    return old, new


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
