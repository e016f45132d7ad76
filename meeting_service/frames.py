"""The frames of the room WebSocket, both ways (see the service README)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from meeting_service.models import Participant, RoomDetail, Shape

SIGNAL_DATA_MAX = 64 * 1024
SignalKind = Literal["offer", "answer", "candidate"]
Ref = StrictStr | StrictInt | None


class Frame(BaseModel):
    """A client frame on the room socket. Unknown fields are ignored, so a newer
    client still talks to an older server; `ref` is echoed on a refusal."""

    model_config = ConfigDict(extra="ignore", strict=True)

    ref: Ref = Field(None, description="Any string or integer; echoed in an error frame")


class SignalFrame(Frame):
    type: Literal["signal"]
    to: StrictStr = Field(description="The participant id of the peer")
    kind: SignalKind
    data: dict[str, Any] = Field(
        description="Relayed unchanged; at most 64 KiB as JSON (an SDP, or an ICE candidate)"
    )


class MediaFrame(Frame):
    type: Literal["media"]
    audio: StrictBool | None = None
    video: StrictBool | None = None
    screen: StrictBool | None = None

    def changes(self) -> dict[str, bool]:
        sent = {"audio": self.audio, "video": self.video, "screen": self.screen}
        return {name: value for name, value in sent.items() if value is not None}


class HandFrame(Frame):
    type: Literal["hand"]
    raised: StrictBool


ClientFrame = Annotated[SignalFrame | MediaFrame | HandFrame, Field(discriminator="type")]


class RoomSnapshot(Shape):
    """The first frame on the room socket: whom to call."""

    type: Literal["room.snapshot"] = "room.snapshot"
    self_: Participant = Field(alias="self")
    room: RoomDetail
    participants: list[Participant] = Field(description="The participants the viewer may see")


class ErrorFrame(Shape):
    """A refused frame; the socket stays open. `code` is the machine code of
    every error (shared/error_codes.py); `ref` only when the frame had one."""

    type: Literal["error"] = "error"
    error: str
    code: str
    ref: str | int | None = None
