from chat_service.app import create_app
from chat_service.settings import ChatSettings
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
    assert await db.fetchval("SELECT count(*) FROM chat.schema_migrations") == 1
