"""Request and response shapes of the identity endpoints."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from shared.json_schema import not_null
from shared.passwords import MAX_PASSWORD_BYTES
from shared.text import StorableStr, readable_name, storable
from shared.timefmt import Timestamp

DISPLAY_NAME_MAX = 50
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _password(value: str) -> str:
    storable(value)
    if not 8 <= len(value.encode()) <= MAX_PASSWORD_BYTES:
        raise ValueError(f"must be 8 to {MAX_PASSWORD_BYTES} bytes")
    return value


def _email(value: str) -> str:
    if not EMAIL.match(value):
        raise ValueError("must be an email address")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http or https URL")
    return value


def _display_name_length(value: str) -> str:
    if len(value) > DISPLAY_NAME_MAX:
        raise ValueError(f"must be at most {DISPLAY_NAME_MAX} characters")
    return value


Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,32}$")]
Password = Annotated[str, AfterValidator(_password)]
Email = Annotated[
    StorableStr, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_email)
]
DisplayName = Annotated[
    str,
    AfterValidator(readable_name),
    AfterValidator(_display_name_length),
    WithJsonSchema(
        {
            "type": "string",
            "format": "readable-name",
            "minLength": 1,
            "maxLength": DISPLAY_NAME_MAX,
        }
    ),
]
AvatarUrl = Annotated[
    StorableStr,
    StringConstraints(strip_whitespace=True, max_length=2048),
    AfterValidator(_http_url),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class RegisterIn(Strict):
    username: Username
    password: Password
    email: Email | None = None
    display_name: DisplayName | None = Field(default=None, alias="displayName")
    avatar_url: AvatarUrl | None = Field(default=None, alias="avatarUrl")


class LoginIn(Strict):
    username: StorableStr | None = Field(default=None, max_length=254)
    email: StorableStr | None = Field(default=None, max_length=254)
    password: StorableStr = Field(max_length=1024)


class RefreshIn(Strict):
    refresh_token: str = Field(min_length=1, max_length=512)


class ProfileIn(Strict):
    # Left out: unchanged; null: refused (a display name is never empty).
    display_name: DisplayName | None = Field(
        default=None, alias="displayName", json_schema_extra=not_null
    )
    avatar_url: AvatarUrl | None = Field(default=None, alias="avatarUrl")


class GuestIn(Strict):
    display_name: DisplayName = Field(alias="displayName")


class UserOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    username: str
    email: str | None
    display_name: str = Field(serialization_alias="displayName")
    avatar_url: str | None = Field(serialization_alias="avatarUrl")
    created_at: Timestamp = Field(serialization_alias="createdAt")


class GuestTokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int


class SessionOut(GuestTokenOut):
    user: UserOut
    refresh_token: str


class Jwks(BaseModel):
    keys: list[dict[str, str]]


class User(BaseModel):
    """A stored user, password hash included: never serialised to a client."""

    id: str
    username: str
    email: str | None
    password_hash: str
    display_name: str
    avatar_url: str | None
    created_at: datetime

    def public(self) -> UserOut:
        return UserOut.model_validate(self.model_dump(exclude={"password_hash"}))
