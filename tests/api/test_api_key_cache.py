"""A web process keeps the API keys it has verified for ZENTRA_API_KEY_CACHE_SECONDS instead of
reading them for every request (zentra/api/authentication.py). A revocation made in the same
process takes effect at once; one made elsewhere (another process, or SQL behind the ORM) within
the cache's seconds; the secret is checked on every request all the same."""

from __future__ import annotations

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from tenants.models import ApiKey
from tenants.services.api_keys import api_key_revoke
from zentra.api import authentication

from ..conftest import SYSTEM, api_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch, settings):
    """The cache's clock, moved by hand; a cache of 5 seconds, emptied first."""
    settings.ZENTRA_API_KEY_CACHE_SECONDS = 5
    authentication._cached_keys.clear()
    now = [1000.0]
    monkeypatch.setattr(authentication, "_clock", lambda: now[0])
    return now


def key_reads(queries) -> list[str]:
    return [q["sql"] for q in queries if "tenants_apikey" in q["sql"] and "UPDATE" not in q["sql"]
            or "zentra_api_key_tenant" in q["sql"]]


def test_a_second_request_within_the_cache_reads_no_key(tenant_a, clock):
    # given: a first request, which reads the key
    assert tenant_a.get("/v1/accounts").status_code == 200
    # when
    with CaptureQueriesContext(connection) as queries:
        response = tenant_a.get("/v1/accounts")
    # then
    assert response.status_code == 200
    assert key_reads(queries.captured_queries) == []
    # and past the cache's seconds it is read again
    clock[0] += 5
    with CaptureQueriesContext(connection) as queries:
        assert tenant_a.get("/v1/accounts").status_code == 200
    assert key_reads(queries.captured_queries)


def test_a_revocation_in_this_process_takes_effect_at_once(tenant_a, clock):
    # given
    assert tenant_a.get("/v1/accounts").status_code == 200
    # when
    api_key_revoke(api_key=ApiKey.objects.get(tenant=tenant_a.tenant), actor=SYSTEM, reason="leaked")
    # then
    assert tenant_a.get("/v1/accounts").status_code == 401


def test_a_revocation_made_elsewhere_takes_effect_within_the_cache_seconds(tenant_a, clock):
    # given: the key is cached
    assert tenant_a.get("/v1/accounts").status_code == 200
    # when: another process revokes it (here, SQL that no signal of this process sees)
    with connections["default"].cursor() as cursor:
        cursor.execute("UPDATE tenants_apikey SET revoked_at = now() WHERE tenant_id = %s", [tenant_a.tenant.id])
    # then: still accepted while cached, refused once the cache's seconds have passed
    clock[0] += 4.9
    assert tenant_a.get("/v1/accounts").status_code == 200
    clock[0] += 0.2
    refused = tenant_a.get("/v1/accounts")
    assert refused.status_code == 401 and refused.json()["code"] == "authentication_failed"


def test_a_wrong_secret_for_a_cached_prefix_is_refused(tenant_a, clock):
    # given
    assert tenant_a.get("/v1/accounts").status_code == 200
    prefix, secret = tenant_a.raw_key[3:].split("_", 1)
    forged = f"zk_{prefix}_{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"
    # when
    response = api_client(forged).get("/v1/accounts")
    # then
    assert response.status_code == 401


def test_with_no_cache_every_request_reads_its_key(tenant_a, clock, settings):
    # given
    settings.ZENTRA_API_KEY_CACHE_SECONDS = 0
    assert tenant_a.get("/v1/accounts").status_code == 200
    # when
    with CaptureQueriesContext(connection) as queries:
        assert tenant_a.get("/v1/accounts").status_code == 200
    # then
    assert key_reads(queries.captured_queries)
