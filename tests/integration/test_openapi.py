"""Each process documents itself in OpenAPI 3.1, from the models that validate its requests."""

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from openapi_spec_validator import validate


async def _documents(gateway_stack, aiohttp_client):
    chat = await aiohttp_client(gateway_stack.chat)
    meeting = await aiohttp_client(gateway_stack.meeting)
    return {"gateway": gateway_stack.client, "chat": chat, "meeting": meeting}


async def test_every_process_serves_a_valid_openapi_31_document(gateway_stack, aiohttp_client):
    for name, client in (await _documents(gateway_stack, aiohttp_client)).items():
        r = await client.get("/openapi.json")
        assert r.status == 200, name
        document = await r.json()
        assert document["openapi"] == "3.1.0"
        validate(document)
        r = await client.get("/docs")
        assert r.status == 200
        assert r.content_type == "text/html"


async def test_every_api_route_is_documented(gateway_stack, aiohttp_client):
    clients = await _documents(gateway_stack, aiohttp_client)
    expected = {
        "gateway": {
            ("post", "/auth/register"),
            ("post", "/auth/login"),
            ("post", "/auth/refresh"),
            ("post", "/auth/logout"),
            ("get", "/auth/me"),
            ("patch", "/auth/me"),
            ("post", "/auth/guest"),
            ("get", "/.well-known/jwks.json"),
        },
    }
    # Each service checks its own list: tests/*_service/test_documented.py, test_operations.py.
    for name in expected:
        document = await (await clients[name].get("/openapi.json")).json()
        operations = {(method, path) for path, item in document["paths"].items() for method in item}
        assert expected[name] <= operations, (name, expected[name] - operations)
        for operational in ("/healthz", "/readyz", "/metrics"):
            assert operational in document["paths"]


async def test_request_schemas_come_from_the_validating_models(gateway_stack):
    document = await (await gateway_stack.client.get("/openapi.json")).json()
    body = document["paths"]["/auth/register"]["post"]["requestBody"]["content"]["application/json"]
    schema = document["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"username", "password"}
    assert schema["additionalProperties"] is False
    assert schema["properties"]["username"]["pattern"] == "^[A-Za-z0-9_.-]{3,32}$"


async def test_the_gateway_documents_the_whole_public_api(gateway_stack):
    document = await (await gateway_stack.client.get("/openapi.json")).json()
    validate(document)
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert {("post", "/auth/login"), ("post", "/api/create_room"), ("post", "/rooms")} <= operations
    create = document["paths"]["/api/create_room"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    name = create["schema"]["$ref"].rsplit("/", 1)[1]
    assert name.startswith("Chat")
    assert name in document["components"]["schemas"]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


async def test_docs_pages_load_swagger_ui_from_the_process_itself(gateway_stack, aiohttp_client):
    """No CDN: every file the page names is on the process, so /docs works offline."""
    for name, client in (await _documents(gateway_stack, aiohttp_client)).items():
        r = await client.get("/docs")
        page = await r.text()
        policy = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, name
        parser = _Links()
        parser.feed(page)
        assert len(parser.links) >= 4, name
        assert "http:" not in page and "https:" not in page and "//" not in page, name
        types = set()
        for link in parser.links:
            url = urljoin("http://process.test/docs", link)
            assert urlsplit(url).netloc == "process.test", (name, link)
            asset = await client.get(urlsplit(url).path)
            assert asset.status == 200, (name, link)
            assert len(await asset.read()) > 0
            types.add(asset.content_type)
        assert {"text/css", "image/png"} <= types, name
        assert types & {"text/javascript", "application/javascript"}, name
        bundle = await (await client.get("/docs/swagger-ui-bundle.js")).text()
        assert "SwaggerUIBundle" in bundle
        assert "docs/docs.js" in parser.links
        starter = await (await client.get("/docs/docs.js")).text()
        assert 'url: "openapi.json"' in starter


async def test_docs_assets_revalidate_and_nothing_else_is_served(gateway_stack):
    client = gateway_stack.client
    r = await client.get("/docs/swagger-ui.css")
    etag = r.headers["ETag"]
    assert r.headers["Cache-Control"] == "no-cache"
    r = await client.get("/docs/swagger-ui.css", headers={"If-None-Match": etag})
    assert r.status == 304
    for path in ("/docs/swagger-editor-bundle.js", "/docs/..%2f..%2fpyproject.toml", "/docs/x"):
        r = await client.get(path)
        assert r.status == 404, path
        assert await r.json() == {"error": "not found", "code": "not_found"}
