from chat_service.app import MIGRATIONS, create_app
from chat_service.settings import ChatSettings
from shared.db import migration_files
from tests.conftest import bearer


async def test_service_starts_migrates_and_answers(
    aiohttp_client, database_url, jwks_json, make_token, db
):
    client = await aiohttp_client(
        create_app(ChatSettings(database_url=database_url, jwks=jwks_json))
    )
    response = await client.get("/api/rooms", headers=bearer(make_token()))
    assert response.status == 200
    assert (await client.get("/api/rooms")).status == 401
    assert await (await client.get("/readyz")).json() == {
        "status": "ready",
        "checks": {"database": True},
    }
    applied = await db.fetch("SELECT version FROM chat.schema_migrations ORDER BY version")
    assert [row["version"] for row in applied] == [v for v, _ in migration_files(MIGRATIONS)]
    assert len(applied) == 3
