"""Why the meeting rules said no. The store raises these; the routes give them a status."""

from __future__ import annotations

import enum

from meeting_service.room_codes import MAX_ATTEMPTS


class Refusal(enum.Enum):
    ROOM_NOT_FOUND = "Room not found"
    PARTICIPANT_NOT_FOUND = "Participant not found"
    MESSAGE_NOT_FOUND = "before: no such message in this room"
    CODES_EXHAUSTED = f"Failed to generate unique room code after {MAX_ATTEMPTS} attempts"
    NOT_HOST_SETTINGS = "Only the host can update room settings"
    NOT_HOST_END = "Only the host can end the room"
    NOT_HOST_ADMIT = "Only the host can admit participants"
    NOT_HOST_DENY = "Only the host can deny participants"
    NOT_HOST_REMOVE = "Only the host can remove participants"
    HOST_NOT_REMOVABLE = "The host cannot be removed"
    ROOM_INACTIVE = "Room is no longer active"
    ROOM_LOCKED = "Room is locked"
    ROOM_FULL = "Room is full"
    CAPACITY_BELOW_JOINED = (
        "maxParticipants cannot be lower than the number of participants already joined"
    )
    GUESTS_NOT_ALLOWED = "Guest access is not allowed"
    REMOVED = "You have been removed from this room"
    NOT_IN_ROOM = "You are not in this room"
    CHAT_DISABLED = "Chat is disabled in this room"
    NOT_WAITING = "Participant is not waiting"
    NOT_HOST_MUTE = "Only the host can mute participants"
    SCREEN_SHARE_DISABLED = "Screen sharing is disabled in this room"


class Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal
