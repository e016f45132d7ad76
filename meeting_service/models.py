"""Every request and response shape of the meeting service (camelCase on the wire)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from shared.json_schema import INTEGRAL, not_null_fields
from shared.text import StorableStr, readable_name, storable
from shared.timefmt import Timestamp

DEFAULT_ROOM_NAME = "Meeting Room"
NAME_MAX = 100
CONTENT_MAX = 4000
MIN_PARTICIPANTS = 2
MAX_PARTICIPANTS = 100
DEFAULT_MAX_PARTICIPANTS = 50

# A name people read (shared.text.readable_name): a format, since no pattern says it.
READABLE_NAME: JsonDict = {"format": "readable-name", "maxLength": NAME_MAX}

ParticipantStatus = Literal["waiting", "joined", "left", "denied", "removed"]


class Body(BaseModel):
    """A request body: camelCase names only, nothing unknown, no type coercion."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True)


class Shape(BaseModel):
    """A response: built in Python by field name, written in camelCase."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)


def _room_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    value = readable_name(value)
    if len(value) > NAME_MAX:
        raise ValueError(f"must be at most {NAME_MAX} characters")
    return value


# --- requests -----------------------------------------------------------------


class CreateRoomBody(Body):
    name: StrictStr = Field(DEFAULT_ROOM_NAME, min_length=1, json_schema_extra=READABLE_NAME)
    waiting_room: StrictBool = False
    max_participants: Annotated[
        StrictInt, Field(ge=MIN_PARTICIPANTS, le=MAX_PARTICIPANTS), INTEGRAL
    ] = DEFAULT_MAX_PARTICIPANTS

    _name = field_validator("name")(_room_name)


class UpdateSettingsBody(Body):
    """Only the fields sent change; `null` is refused rather than read as "unchanged"."""

    model_config = ConfigDict(json_schema_extra=not_null_fields)

    name: StrictStr | None = Field(None, min_length=1, json_schema_extra=READABLE_NAME)
    allow_chat: StrictBool | None = None
    allow_screen_share: StrictBool | None = None
    allow_guest_access: StrictBool | None = None
    waiting_room: StrictBool | None = None
    mute_participants_on_join: StrictBool | None = None
    max_participants: (
        Annotated[StrictInt, Field(ge=MIN_PARTICIPANTS, le=MAX_PARTICIPANTS), INTEGRAL] | None
    ) = None
    is_locked: StrictBool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _room_name(value)

    def changes(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in self.model_fields_set}


class SendMessageBody(Body):
    content: StrictStr = Field(
        min_length=1, max_length=CONTENT_MAX, json_schema_extra={"format": "visible-text"}
    )

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not storable(value).strip():
            raise ValueError("must not be blank")
        return value


class Query(BaseModel):
    """Query strings are text: numbers are parsed; unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore")


class MyRoomsQuery(Query):
    limit: int = Field(50, ge=1, le=100)
    cursor: StorableStr | None = Field(None, min_length=1)


class MessagesQuery(Query):
    limit: int = Field(50, ge=1, le=100)
    before: StorableStr | None = Field(
        None, min_length=1, description="A message id: answer the messages older than it"
    )


# --- responses ----------------------------------------------------------------


class Host(Shape):
    id: str
    display_name: str
    avatar_url: str | None


class RoomSettings(Shape):
    id: str
    room_id: str
    allow_chat: bool
    allow_screen_share: bool
    allow_guest_access: bool
    waiting_room: bool
    mute_participants_on_join: bool
    max_participants: int


class Room(Shape):
    """The room object of the create document, field for field."""

    id: str
    code: str
    name: str
    host_id: str
    is_active: bool
    is_locked: bool
    started_at: Timestamp
    created_at: Timestamp
    updated_at: Timestamp
    host: Host
    settings: RoomSettings


class RoomDetail(Room):
    """The room object everywhere after creation: with when it ended (null while active)."""

    ended_at: Timestamp | None


class RoomPage(Shape):
    rooms: list[RoomDetail]
    next_cursor: str | None = Field(serialization_alias="next_cursor")


class PublicSettings(Shape):
    waiting_room: bool
    allow_guest_access: bool


class PublicRoom(Shape):
    """What anyone holding a code may see before joining."""

    id: str
    code: str
    name: str
    is_active: bool
    is_locked: bool
    host: Host
    settings: PublicSettings


class Media(Shape):
    """What a participant says they send: microphone, camera, a shared screen."""

    audio: bool
    video: bool
    screen: bool


class Participant(Shape):
    id: str
    user_id: str
    display_name: str
    avatar_url: str | None
    is_host: bool
    is_guest: bool
    status: ParticipantStatus
    joined_at: Timestamp
    media: Media
    hand_raised: bool
    connected: bool = Field(description="The participant has at least one open room socket")


class JoinResult(Shape):
    participant: Participant
    room: RoomDetail


class ParticipantList(Shape):
    participants: list[Participant]


class Message(Shape):
    id: str
    room_id: str
    user_id: str
    display_name: str
    avatar_url: str | None
    is_guest: bool
    content: str
    created_at: Timestamp


class MessagePage(Shape):
    messages: list[Message]
    next_before: str | None = Field(serialization_alias="next_before")


class StunServer(Shape):
    urls: list[str]


class TurnServer(Shape):
    urls: list[str]
    username: str = Field(description='"<unix expiry>:<participant id>"')
    credential: str = Field(description="base64 of HMAC-SHA1(shared secret, username)")


class IceServers(Shape):
    """STUN and TURN servers for this participant; TURN credentials expire after `ttl`
    seconds (the TURN REST API convention coturn's `use-auth-secret` checks)."""

    ice_servers: list[TurnServer | StunServer]
    ttl: int
