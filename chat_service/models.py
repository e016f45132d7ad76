"""Request and response shapes of the chat API: they validate, serialise and document."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    model_validator,
)

from shared.json_schema import INTEGRAL
from shared.passwords import MAX_PASSWORD_BYTES
from shared.text import readable_name, storable
from shared.timefmt import Timestamp, TimestampText

MAX_ROOM_NAME = 100
MAX_MESSAGE = 4000
MAX_BIGINT = 2**63 - 1


def within_password_limit(value: str) -> str:
    if len(value.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"must be at most {MAX_PASSWORD_BYTES} bytes")
    return value


def has_visible_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def trimmed_room_name(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= MAX_ROOM_NAME:
        raise ValueError(f"must be 1-{MAX_ROOM_NAME} characters once trimmed")
    return value


RoomName = Annotated[
    StrictStr,
    AfterValidator(readable_name),
    AfterValidator(trimmed_room_name),
    WithJsonSchema(
        {"type": "string", "format": "readable-name", "minLength": 1, "maxLength": MAX_ROOM_NAME}
    ),
]
Password = Annotated[
    StrictStr,
    AfterValidator(storable),
    AfterValidator(within_password_limit),
    Field(min_length=1),
]
RoomId = Annotated[StrictInt, Field(ge=1, le=MAX_BIGINT), INTEGRAL]
MessageText = Annotated[
    StrictStr,
    AfterValidator(storable),
    AfterValidator(has_visible_text),
    Field(min_length=1, max_length=MAX_MESSAGE, json_schema_extra={"format": "visible-text"}),
]
PageLimit = Annotated[int, Field(ge=1, le=100)]


class Body(BaseModel):
    """Request bodies: unknown fields are ignored, as the create_room document's clients expect."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# ----- requests -----


def _password_only_if_private(schema: dict[str, Any]) -> None:
    """The document ignores a public room's password, whatever it holds: the schema
    asks for a string only when is_private is 1, and then requires one."""
    password = schema["properties"]["password"]
    text = next(v for v in password.pop("anyOf") if v != {"type": "null"})
    password.pop("default", None)
    schema["if"] = {"properties": {"is_private": {"const": 1}}, "required": ["is_private"]}
    schema["then"] = {"properties": {"password": text}, "required": ["password"]}


class CreateRoomRequest(Body):
    model_config = ConfigDict(json_schema_extra=_password_only_if_private)

    room_name: RoomName = Field(description="Unique across all rooms, trimmed, 1-100 characters")
    is_private: Annotated[StrictInt, Field(ge=0, le=1), INTEGRAL] = Field(
        default=0, description="1 for a private room, 0 for public"
    )
    password: Password | None = Field(
        default=None,
        description="Required for a private room (1-72 bytes); ignored for public rooms",
    )

    @model_validator(mode="before")
    @classmethod
    def ignore_public_password(cls, data: Any) -> Any:
        # The document says the password is ignored for public rooms, whatever it holds.
        if isinstance(data, dict):
            is_private = data.get("is_private", 0)
            if type(is_private) in (int, float) and is_private == 0:
                return {key: value for key, value in data.items() if key != "password"}
        return data

    @model_validator(mode="after")
    def private_needs_password(self) -> CreateRoomRequest:
        if self.is_private == 1 and self.password is None:
            raise ValueError("a private room needs a password")
        return self


class JoinRoomRequest(Body):
    name: RoomName = Field(description="The room's name (trimmed, case-insensitive)")
    password: Annotated[StrictStr, AfterValidator(storable)] | None = Field(
        default=None, description="Required for private rooms"
    )


class RoomIdRequest(Body):
    room_id: RoomId


class SendMessageRequest(Body):
    room_id: RoomId
    message: MessageText = Field(description="1-4000 characters, not blank")


class UserRoomsQuery(Body):
    limit: PageLimit = 50
    cursor: str | None = Field(
        default=None, min_length=1, description="next_cursor of the previous page"
    )


class MessagesQuery(Body):
    room_id: Annotated[int, Field(ge=1, le=MAX_BIGINT)]
    limit: PageLimit = 50
    before: Annotated[int, Field(ge=1, le=MAX_BIGINT)] | None = Field(
        default=None, description="Only messages older than this message id"
    )
    after: Annotated[int, Field(ge=0, le=MAX_BIGINT)] | None = Field(
        default=None,
        description="Only messages newer than this message id, oldest first (a client"
        " catching up passes the last id it saw); not with `before`",
    )

    @model_validator(mode="after")
    def one_direction(self) -> MessagesQuery:
        if self.before is not None and self.after is not None:
            raise ValueError("before and after cannot be used together")
        return self


class RoomSocketQuery(Body):
    after: Annotated[int, Field(ge=0, le=MAX_BIGINT)] | None = Field(
        default=None,
        description="Replay every message newer than this id, oldest first, then go live",
    )


class RoomPath(Body):
    room_id: Annotated[int, Field(ge=1, le=MAX_BIGINT)]


# ----- responses -----


class RoomCreated(BaseModel):
    message: str
    room_id: int


class PublicRoom(BaseModel):
    room_id: int
    name: str
    is_private: bool
    member_count: int
    joined: bool
    created_at: Timestamp


class PublicRooms(BaseModel):
    rooms: list[PublicRoom]


class UserRoom(BaseModel):
    room_id: int
    name: str
    is_private: bool
    is_creator: bool
    joined_at: Timestamp


class UserRooms(BaseModel):
    rooms: list[UserRoom]
    next_cursor: str | None


class RoomJoined(BaseModel):
    message: str
    room_id: int
    room_name: str


class Done(BaseModel):
    message: str


class Member(BaseModel):
    username: str
    is_creator: bool
    joined_at: Timestamp


class MembersQuery(Body):
    limit: PageLimit | None = Field(
        default=None, description="Page size (1-100); without limit or cursor, every member"
    )
    cursor: str | None = Field(
        default=None, min_length=1, description="next_cursor of the previous page"
    )


class Members(BaseModel):
    members: list[Member]
    next_cursor: str | None = Field(
        default=None, description="Where the next page starts; null on the last page"
    )


class MessageSent(BaseModel):
    message: str
    message_id: int
    # Written by the send statement (chat_service.store.SENT), in the API's form.
    created_at: TimestampText


class ChatMessage(BaseModel):
    message_id: int
    room_id: int
    username: str
    message: str
    # Written by the database (chat_service.messages_store).
    created_at: TimestampText


class MessagePage(BaseModel):
    messages: list[ChatMessage]
    next_before: int | None


class MessagesAfter(BaseModel):
    """The messages newer than `after`, oldest first; `next_after` pages on, and is
    null once the page reaches the newest message."""

    messages: list[ChatMessage]
    next_after: int | None


class HistoryPage(RootModel[MessagePage | MessagesAfter]):
    """Newest first with `next_before`; with `after`, oldest first with `next_after`."""
