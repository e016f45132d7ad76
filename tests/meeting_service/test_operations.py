"""The meeting service documents itself and reports readiness."""

from __future__ import annotations

from meeting_service.app import MIGRATIONS
from shared.db import migration_files
from tests.conftest import bearer
from tests.meeting_service.conftest import create_room


async def test_openapi_documents_every_meeting_route(service):
    response = await service.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert {
        ("post", "/rooms"),
        ("get", "/rooms"),
        ("get", "/rooms/{room_id}"),
        ("get", "/rooms/code/{code}"),
        ("post", "/rooms/code/{code}/join"),
        ("patch", "/rooms/{room_id}/settings"),
        ("post", "/rooms/{room_id}/end"),
        ("post", "/rooms/{room_id}/leave"),
        ("get", "/rooms/{room_id}/participants"),
        ("post", "/rooms/{room_id}/participants/{participant_id}/admit"),
        ("post", "/rooms/{room_id}/participants/{participant_id}/deny"),
        ("delete", "/rooms/{room_id}/participants/{participant_id}"),
        ("get", "/rooms/{room_id}/messages"),
        ("post", "/rooms/{room_id}/messages"),
        ("get", "/rooms/{room_id}/ws"),
        ("get", "/rooms/{room_id}/ice-servers"),
        ("post", "/rooms/{room_id}/participants/{participant_id}/mute"),
    } <= operations
    schemas = document["components"]["schemas"]
    assert {"media", "handRaised", "connected"} <= set(schemas["Participant"]["properties"])
    assert set(schemas["Media"]["properties"]) == {"audio", "video", "screen"}
    ice = document["paths"]["/rooms/{room_id}/ice-servers"]["get"]
    assert ice["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IceServers"
    }
    create = document["paths"]["/rooms"]["post"]
    body = document["components"]["schemas"]["CreateRoomBody"]
    assert set(body["properties"]) == {"name", "waitingRoom", "maxParticipants"}
    assert body["properties"]["maxParticipants"]["minimum"] == 2
    assert body["properties"]["maxParticipants"]["maximum"] == 100
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Room"
    }
    assert "security" not in document["paths"]["/rooms/code/{code}"]["get"]


async def test_ready_once_migrated(service, make_token, db):
    await create_room(service, make_token())
    response = await service.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "checks": {"database": True}}
    applied = await db.fetchval("SELECT count(*) FROM meeting.schema_migrations")
    assert applied == len(migration_files(MIGRATIONS))
    response = await service.get("/rooms", headers=bearer(make_token()))
    assert response.status == 200
