"""A request body parsed in one call (`shared.bodies.parsed`) is the body the two
steps make (`json_object`, then validation): whatever the one call accepts, the two
steps accept with the same values, and whatever it does not, the two steps decide."""

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from chat_service.models import JoinRoomRequest, RoomIdRequest, SendMessageRequest
from meeting_service.models import CreateRoomBody, SendMessageBody, UpdateSettingsBody
from shared.bodies import json_object, parsed
from shared.errors import ApiError

MODELS: list[type[BaseModel]] = [
    SendMessageRequest,
    RoomIdRequest,
    JoinRoomRequest,
    CreateRoomBody,
    UpdateSettingsBody,
    SendMessageBody,
]


def two_steps(model: type[BaseModel], raw: bytes) -> BaseModel | None:
    """What the API made of `raw` before the one call: the model, or None if refused."""
    try:
        return model.model_validate(json_object(raw))
    except (ApiError, ValidationError):
        return None


def agree(model: type[BaseModel], raw: bytes) -> None:
    fast = parsed(model, raw)
    if fast is None:
        return  # the two steps decide, as they always did
    slow = two_steps(model, raw)
    assert slow is not None, raw
    assert fast == slow, raw
    assert fast.model_fields_set == slow.model_fields_set, raw


BODIES = [
    b"",
    b" ",
    b"null",
    b"[]",
    b'"text"',
    b"1",
    b"{}",
    b"{",
    b"[" * 100_000,
    b'{"room_name": ' * 50_000,
    b'{"room_id": 1, "message": "hello"}',
    b'{"room_id": 1, "message": "hello"} \n',
    b'{"room_id": 1, "message": "hello"} x',
    b'{"room_id": 1, "message": "first", "room_id": 2}',
    b'{"room_id": 1.0, "message": "hello"}',
    b'{"room_id": 1e0, "message": "hello"}',
    b'{"room_id": 1.5, "message": "hello"}',
    b'{"room_id": -0, "message": "hello"}',
    b'{"room_id": true, "message": "hello"}',
    b'{"room_id": "1", "message": "hello"}',
    b'{"room_id": 99999999999999999999999999, "message": "hello"}',
    b'{"room_id": 1, "message": "hello", "extra": NaN}',
    b'{"room_id": 1, "message": "hello", "extra": Infinity}',
    b'{"room_id": 1, "message": "hello", "extra": 1e999}',
    b'{"room_id": 1, "message": "hello", "extra": ' + b"[" * 300 + b"]" * 300 + b"}",
    b'{"room_id": 1, "message": "\\ud800"}',
    b'{"room_id": 1, "message": "\\ud83d\\ude00"}',
    b'{"room_id": 1, "message": "\xed\xa0\x80"}',
    b'{"room_id": 1, "message": "\xff"}',
    b'{"room_id": 1, "message": "a\nb"}',
    b'{"room_id": 1, "message": "\\u0000"}',
    b'{"room_id": 1, "message": "   "}',
    b'{"room_\\u0069d": 1, "message": "hello"}',
    b'\xef\xbb\xbf{"room_id": 1, "message": "hello"}',
    '{"room_id": 1, "message": "hello"}'.encode("utf-16"),
    '{"room_id": 1, "message": "hello"}'.encode("utf-16-le"),
    b'{"name": "General"}',
    b'{"name": "General", "password": null}',
    b'{"name": "Standup", "waitingRoom": true, "maxParticipants": 10.0}',
    b'{"name": "Standup", "maxParticipants": 10.5}',
    b'{"name": "Standup", "maxParticipants": 1}',
    b'{"name": "Standup", "waiting_room": true}',
    b'{"name": "Standup", "unknown": 1}',
    b'{"name": " \\u00c5ngstr\\u00f6m "}',
    b'{"name": "A\\u030angstrom"}',
    b'{"name": "\\u202eevil"}',
    b'{"name": null}',
    b'{"waitingRoom": null}',
    b'{"content": "hi"}',
    b'{"allowChat": false, "isLocked": true}',
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.__module__}.{m.__name__}")
@pytest.mark.parametrize("raw", BODIES)
def test_what_one_call_accepts_the_two_steps_accept_alike(model, raw):
    agree(model, raw)


def test_a_valid_body_is_parsed_in_one_call():
    body = parsed(SendMessageRequest, b'{"room_id": 3, "message": "hello"}')
    assert body == SendMessageRequest(room_id=3, message="hello")
    created = parsed(CreateRoomBody, b'{"name": "Standup", "maxParticipants": 10.0}')
    assert created is not None
    assert (created.name, created.max_participants) == ("Standup", 10)


def test_what_is_not_exactly_valid_is_left_to_the_two_steps():
    for raw in (b"", b"[]", b"\xef\xbb\xbf{}", b'{"name": "\\ud800"}', b'{"x": ' + b"[" * 300):
        assert parsed(CreateRoomBody, raw) is None


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    ["room_id", "message", "name", "password", "waitingRoom", "maxParticipants", "content"]
)
OBJECTS = st.dictionaries(
    FIELDS | st.text(max_size=4), JSON_VALUES | st.integers(0, 60), max_size=4
)


@settings(max_examples=300, deadline=None)
@given(data=OBJECTS, model=st.sampled_from(MODELS), spaced=st.booleans())
def test_generated_bodies_agree(data: dict[str, Any], model: type[BaseModel], spaced: bool):
    raw = json.dumps(data, separators=(", ", ": ") if spaced else (",", ":")).encode()
    agree(model, raw)
