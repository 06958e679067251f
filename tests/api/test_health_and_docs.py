"""Operations endpoints: the health check, the OpenAPI document and the docs page."""

import re
import socket

import pytest

pytestmark = pytest.mark.django_db


def closed_local_port() -> int:
    """A local port nobody listens on: bound by us a moment ago, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- /healthz -------------------------------------------------------------------------------

def test_healthz_is_200_when_postgres_redis_and_the_broker_answer(client):
    # when
    response = client.get("/healthz")

    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok", "broker": "ok"}}
    assert response["X-Request-Id"].startswith("req_")


def test_healthz_is_503_naming_redis_when_redis_does_not_answer(client, settings):
    # given: a Redis URL on a closed port (the real Redis keeps running)
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_local_port()}/0"

    # when
    response = client.get("/healthz")

    # then
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"].startswith("error")
    assert response["X-Request-Id"].startswith("req_")


def test_healthz_is_503_naming_the_broker_when_the_broker_does_not_answer(client, settings):
    # given: the Celery broker on a closed port of its own; Redis itself (the cache) still answers
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_local_port()}/0"

    # when
    response = client.get("/healthz")

    # then: only the broker is named
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"] == "ok"
    assert body["checks"]["broker"].startswith("error")


def test_healthz_needs_no_api_key(client):
    # when
    response = client.get("/healthz", HTTP_AUTHORIZATION="Bearer nonsense")

    # then
    assert response.status_code == 200


# --- OpenAPI --------------------------------------------------------------------------------

@pytest.fixture
def schema(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    return response.json()


def test_openapi_describes_the_accounts_and_events_endpoints(schema):
    # then
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert {"/v1/accounts", "/v1/accounts/{account_id}", "/v1/accounts/{account_id}/balance",
            "/v1/accounts/{account_id}/freeze", "/v1/accounts/{account_id}/unfreeze",
            "/v1/accounts/{account_id}/close", "/v1/events", "/v1/events/{event_id}"} <= set(paths)
    assert set(paths["/v1/accounts"]) >= {"get", "post"}
    assert "post" not in paths["/v1/events"]
    assert "delete" not in paths["/v1/accounts"]
    create = paths["/v1/accounts"]["post"]
    body_schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert "201" in create["responses"]
    request_ref = body_schema["$ref"].rsplit("/", 1)[-1]
    request_props = schema["components"]["schemas"][request_ref]["properties"]
    assert {"customer", "currency", "account_type", "name", "normal_balance", "allow_overdraft",
            "metadata"} <= set(request_props)
    list_params = {p["name"] for p in paths["/v1/accounts"]["get"]["parameters"]}
    assert {"limit", "starting_after", "customer", "currency", "account_type", "status"} <= list_params
    assert {"limit", "starting_after", "type"} <= {p["name"] for p in paths["/v1/events"]["get"]["parameters"]}


def test_openapi_has_a_bearer_security_scheme_used_by_every_operation(schema):
    # then
    schemes = schema["components"]["securitySchemes"]
    bearer = [name for name, scheme in schemes.items() if scheme == {**scheme, "type": "http", "scheme": "bearer"}]
    assert bearer
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path in SIGNED_BY_PROVIDERS | PUBLIC:
                continue
            assert {bearer[0]: []} in operation.get("security", []), (method, path)


# Where a client starts, and the public keys: no key needed, nothing of a tenant's in them.
PUBLIC = {"/v1/", "/v1/signing_keys"}


def test_the_api_index_needs_no_key_and_lists_every_operation_of_the_contract(client, schema):
    # when
    response = client.get("/v1/")
    # then
    assert response.status_code == 200 and response["X-Request-Id"].startswith("req_")
    index = response.json()
    assert (index["object"], index["version"], index["openapi"], index["docs"]) == (
        "api", "v1", "/v1/openapi.json", "/v1/docs")
    assert {"authentication", "idempotency", "money", "lists", "errors"} <= set(index["conventions"])
    served = {(method.upper(), path) for path, item in schema["paths"].items() for method in item
              if method in {"get", "post", "delete"}}
    assert {(op["method"], op["path"]) for op in index["operations"]} == served
    assert all(not requirement for requirement in schema["paths"]["/v1/"]["get"].get("security", [{}]))


# Inbound provider events carry the provider's HMAC signature instead of an API key and are
# deduplicated by the provider's event id instead of an Idempotency-Key.
SIGNED_BY_PROVIDERS = {"/v1/providers/{provider_id}/events"}


def test_openapi_provider_events_declare_their_signature_not_an_api_key(schema):
    for path in SIGNED_BY_PROVIDERS:
        operation = schema["paths"][path]["post"]
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        assert headers["Zentra-Provider-Signature"]["required"] is True
        assert "Idempotency-Key" not in headers
        assert all(not requirement for requirement in operation.get("security", [{}]))


def test_openapi_lists_are_the_list_envelope(schema):
    # then: GET /v1/accounts answers {"object": "list", "data": [...], "has_more": bool}
    for path in ("/v1/accounts", "/v1/events"):
        ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        if "$ref" in ok:
            ok = schema["components"]["schemas"][ok["$ref"].rsplit("/", 1)[-1]]
        assert ok["type"] == "object", path
        assert set(ok["properties"]) == {"object", "data", "has_more"}, path
        assert ok["properties"]["data"]["type"] == "array"
        assert ok["properties"]["has_more"]["type"] == "boolean"


def test_openapi_links_lead_from_one_object_to_what_can_be_done_with_it_never_from_a_list(schema):
    # then: a created hold links to its capture and release, by its own id
    created = schema["paths"]["/v1/holds"]["post"]["responses"]["201"]["links"]
    operations = {path: ops for path, ops in schema["paths"].items()}
    capture = operations["/v1/holds/{hold_id}/capture"]["post"]["operationId"]
    assert created[capture]["parameters"] == {"path.hold_id": "$response.body#/id"}
    # and no link resolves through a list's first object, which an empty page does not have
    for path, ops in schema["paths"].items():
        for method, operation in ops.items():
            for status, response in operation.get("responses", {}).items():
                for link in response.get("links", {}).values():
                    assert set(link["parameters"].values()) == {"$response.body#/id"}, (method, path, status)


def test_openapi_posts_declare_the_required_idempotency_key(schema):
    # then
    posts = [(path, ops["post"]) for path, ops in schema["paths"].items()
             if "post" in ops and path not in SIGNED_BY_PROVIDERS]
    assert posts
    for path, operation in posts:
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path
        assert headers["Idempotency-Key"]["required"] is True
    for path, ops in schema["paths"].items():
        if "get" in ops:
            assert "Idempotency-Key" not in {p["name"] for p in ops["get"].get("parameters", [])}, path


def test_openapi_does_not_describe_operations_with_the_base_class_docstring(schema):
    # then: "request.tenant is the API key's tenant..." is the edge's internals, not an operation
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "request.tenant" not in operation.get("description", ""), (method, path)


def test_openapi_needs_no_api_key(client):
    # when
    response = client.get("/v1/openapi.json", HTTP_AUTHORIZATION="Bearer nonsense")

    # then
    assert response.status_code == 200


# --- docs page ------------------------------------------------------------------------------

def test_docs_page_is_html_served_without_a_cdn(client):
    # when
    response = client.get("/v1/docs")

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "/v1/openapi.json" in html
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "googleapis.com"):
        assert cdn not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    assert all(asset.startswith("/static/drf_spectacular_sidecar/") for asset in assets), assets
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_docs_assets_exist_in_the_sidecar_package(client):
    # given
    from django.contrib.staticfiles import finders

    html = client.get("/v1/docs").content.decode()
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html)

    # then: every file the page loads ships with the installed sidecar
    assert assets
    for asset in assets:
        assert finders.find(asset), asset
