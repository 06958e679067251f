"""Request budgets (zentra/api/ratelimit.py): per API key, with a tenant's own numbers; per client
address for failed authentication and for what needs no key. Over budget: 429 rate_limited with
Retry-After, nothing written but bounded evidence. Every answer says where its budget stands.
Counted in the real Redis, across threads and processes; served without limits when it is away."""

import multiprocessing
import socket
import threading
import time

import pytest
from django.db import connections
from django.test import RequestFactory
from redis import Redis
from rest_framework.test import APIClient

from audit.models import AccessDenial, RequestRecord
from ledger.models import Account
from tenants.models import ApiKey
from tenants.services.api_keys import api_key_create, api_key_revoke
from tenants.services.tenants import tenant_rate_limits_set
from tests.conftest import SYSTEM, api_client
from zentra.api.middleware import client_address_of
from zentra.api.models import IdempotencyKey
from zentra.api.ratelimit import KEY_PREFIX, RateLimiter, Window

pytestmark = pytest.mark.django_db

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")
ACCOUNT = {"customer": "cus_1", "currency": "USD", "account_type": "customer"}


def unknown_key(n: int = 0) -> str:
    return f"zk_{'A' * 12}_{n:032d}"


def budget(response) -> tuple[int, int, int]:
    return int(response["RateLimit-Limit"]), int(response["RateLimit-Remaining"]), int(response["RateLimit-Reset"])


def limit_tenant(ctx, *, per_second=None, per_minute=None) -> None:
    ctx.tenant = tenant_rate_limits_set(tenant=ctx.tenant, per_second=per_second, per_minute=per_minute, actor=SYSTEM,
                                        reason="test")


def closed_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def defaults(settings):
    settings.ZENTRA_RATE_LIMIT_PER_SECOND = 100
    settings.ZENTRA_RATE_LIMIT_PER_MINUTE = 6000
    settings.ZENTRA_AUTH_FAILURES_PER_MINUTE = 30
    return settings


# --- headers on every answer ---------------------------------------------------------------

def test_a_keys_answers_carry_its_budget(tenant_a, defaults):
    # when
    first = tenant_a.get("/v1/accounts")
    limit_tenant(tenant_a, per_second=1000, per_minute=50)
    second = tenant_a.get("/v1/accounts")
    third = tenant_a.get("/v1/accounts")

    # then: each names the window closest to running out (the second's, then the minute's)
    assert first.status_code == second.status_code == third.status_code == 200
    assert budget(first) == (100, 99, 1)
    assert first["RateLimit-Policy"] == "100;w=1, 6000;w=60"
    assert budget(second)[:2] == (50, 48) and 1 <= budget(second)[2] <= 60
    assert budget(third)[:2] == (50, 47)
    assert third["RateLimit-Policy"] == "1000;w=1, 50;w=60"


def test_refusals_and_keyless_answers_carry_a_budget_too(client, tenant_a, defaults):
    # when
    unknown_path = tenant_a.get("/v1/no-such-thing")
    not_found = tenant_a.get("/v1/accounts/acct_nope")
    bad_key = APIClient().get("/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {unknown_key()}")
    index = client.get("/v1/")

    # then
    for response in (unknown_path, not_found, bad_key, index):
        assert all(name in response for name in RATE_HEADERS), response
    assert budget(not_found)[:2] == (100, 99)  # the key's
    assert budget(bad_key)[:2] == (30, 29)  # the address's failed authentications
    assert bad_key["RateLimit-Policy"] == "30;w=60"


# --- an API key's budget -------------------------------------------------------------------

def test_key_over_its_minute_budget_is_429_with_retry_after_and_writes_nothing(tenant_a, defaults):
    # given: the tenant's own budget, 3 a minute
    limit_tenant(tenant_a, per_minute=3)
    allowed = [tenant_a.get("/v1/accounts") for _ in range(3)]
    accounts = Account.objects.count()
    keys = IdempotencyKey.objects.count()

    # when
    refused = [tenant_a.post("/v1/accounts", ACCOUNT) for _ in range(4)]

    # then
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [budget(r)[:2] for r in allowed] == [(3, 2), (3, 1), (3, 0)]
    for response in refused:
        assert response.status_code == 429
        assert response["Content-Type"] == "application/problem+json"
        body = response.json()
        assert (body["code"], body["status"], body["request_id"]) == ("rate_limited", 429, response["X-Request-Id"])
        assert "3 per minute" in body["detail"]
        assert 1 <= int(response["Retry-After"]) <= 60
        assert budget(response)[:2] == (3, 0)
    assert (Account.objects.count(), IdempotencyKey.objects.count()) == (accounts, keys)
    # and the refusals are evidence for the tenant, on one counted row
    record = RequestRecord.objects.get(status=429)
    assert (record.tenant_id, record.actor, record.repeat_count) == (
        tenant_a.tenant.id, f"api_key:{ApiKey.objects.get(tenant=tenant_a.tenant, name='bootstrap').id}", 4)


def test_a_second_that_already_saw_its_budget_refuses_with_its_own_retry_after(tenant_a, defaults):
    # given: a per-second budget of 5, already spent in this second (its counter set in Redis
    # as five requests would have left it, only lasting 30 s so the test cannot race the clock)
    limit_tenant(tenant_a, per_second=5)
    api_key = ApiKey.objects.get(tenant=tenant_a.tenant, name="bootstrap")
    redis = Redis.from_url(defaults.ZENTRA_RATE_LIMIT_REDIS_URL)
    redis.set(f"{KEY_PREFIX}key:{api_key.id}:1", 5, px=30_000)

    # when
    response = tenant_a.get("/v1/accounts")

    # then
    assert response.status_code == 429
    assert "5 per second" in response.json()["detail"]
    assert 29 <= int(response["Retry-After"]) <= 30
    assert budget(response)[:2] == (5, 0)


def test_a_tenants_numbers_hold_for_each_of_its_keys_and_no_other_tenant(tenant_a, tenant_b, defaults):
    # given
    limit_tenant(tenant_a, per_minute=2)
    _, raw = api_key_create(tenant=tenant_a.tenant, name="second", scope=ApiKey.SCOPE_WRITE, actor=SYSTEM)
    other_key = api_client(raw)

    # when
    first_key = [tenant_a.get("/v1/accounts").status_code for _ in range(3)]
    second_key = [other_key.get("/v1/accounts").status_code for _ in range(3)]
    other_tenant = [tenant_b.get("/v1/accounts").status_code for _ in range(3)]

    # then
    assert first_key == second_key == [200, 200, 429]
    assert other_tenant == [200, 200, 200]
    assert budget(tenant_b.get("/v1/accounts"))[0] == 100


@pytest.mark.django_db(transaction=True)
def test_parallel_requests_are_counted_exactly(tenant_a, defaults):
    # given: 48 requests from 8 threads against a budget of 20 a minute
    limit_tenant(tenant_a, per_minute=20)
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker():
        client = api_client(tenant_a.raw_key)
        try:
            barrier.wait(timeout=20)
            for _ in range(6):
                status = client.get("/v1/accounts").status_code
                with lock:
                    statuses.append(status)
        finally:
            connections.close_all()

    # when
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # then: no count lost, no unit given twice, and the 429s counted on one row
    assert sorted(statuses) == [200] * 20 + [429] * 28
    assert RequestRecord.objects.filter(tenant_id=tenant_a.tenant.id, status=200, path="/v1/accounts").count() == 20
    assert list(RequestRecord.objects.filter(status=429).values_list("repeat_count", flat=True)) == [28]


def _charge_many(url: str, name: str, times: int, results) -> None:
    limiter = RateLimiter(url)
    results.put([limiter.charge(name, [Window(120, 60)]).allowed for _ in range(times)])


def test_processes_share_one_budget(settings):
    # given: four processes, each with its own connection, 50 requests each against 120
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    url = settings.ZENTRA_RATE_LIMIT_REDIS_URL
    name = f"test:processes:{time.time_ns()}"
    processes = [context.Process(target=_charge_many, args=(url, name, 50, results)) for _ in range(4)]

    # when
    for process in processes:
        process.start()
    answers = [answer for _ in processes for answer in results.get(timeout=60)]
    for process in processes:
        process.join(30)

    # then
    assert (answers.count(True), answers.count(False)) == (120, 80)


# --- the store away ------------------------------------------------------------------------

def test_without_redis_the_api_keeps_serving_and_says_so_in_the_log(tenant_a, defaults, caplog):
    # given: the limiter's store on a closed port (the real Redis keeps running) and a budget
    # that would refuse the second request
    defaults.ZENTRA_RATE_LIMIT_REDIS_URL = f"redis://127.0.0.1:{closed_local_port()}/0"
    limit_tenant(tenant_a, per_minute=1)

    # when
    with caplog.at_level("WARNING", logger="zentra.ratelimit"):
        reads = [tenant_a.get("/v1/accounts") for _ in range(3)]
        created = tenant_a.post("/v1/accounts", ACCOUNT)
        bad_key = APIClient().get("/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {unknown_key()}")

    # then: money still moves; the answers show the budget as nothing was counted
    assert [r.status_code for r in reads] == [200, 200, 200]
    assert created.status_code == 201
    assert bad_key.status_code == 401
    assert budget(reads[-1])[:2] == (1, 1)
    warnings = [r for r in caplog.records if r.name == "zentra.ratelimit"]
    assert len(warnings) == 1 and "did not answer" in warnings[0].getMessage()
    assert "serving without limits" in warnings[0].getMessage()


# --- failed authentication, per address ----------------------------------------------------

def test_200_bad_keys_hit_429_after_the_address_budget_and_leave_two_rows(tenant_a, defaults, one_evidence_window):
    # given
    attacker = APIClient()

    # when
    started = time.monotonic()
    answers = [attacker.get("/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {unknown_key(n)}") for n in range(200)]
    elapsed = time.monotonic() - started

    # then
    assert [r.status_code for r in answers] == [401] * 30 + [429] * 170, elapsed
    last = answers[-1]
    assert last.json()["code"] == "rate_limited"
    assert "failed-authentication budget of 30 per minute" in last.json()["detail"]
    assert 1 <= int(last["Retry-After"]) <= 60
    rows = RequestRecord.objects.filter(path="/v1/accounts").order_by("status")
    assert [(r.status, r.repeat_count, r.client_address) for r in rows] == [
        (401, 30, "127.0.0.1"), (429, 170, "127.0.0.1")]
    # and a good key from the same address still works; another address has its own budget
    assert tenant_a.get("/v1/accounts").status_code == 200
    elsewhere = attacker.get("/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {unknown_key()}", REMOTE_ADDR="10.1.2.3")
    assert elsewhere.status_code == 401


def test_a_missing_key_counts_as_a_failed_authentication(defaults):
    # given
    defaults.ZENTRA_AUTH_FAILURES_PER_MINUTE = 2

    # when
    answers = [APIClient().get("/v1/accounts").status_code for _ in range(3)]

    # then
    assert answers == [401, 401, 429]


def test_a_revoked_key_answers_exactly_like_an_unknown_one(tenant_a, defaults):
    # given: each from a fresh address, so both meet the same budget
    api_key, raw = api_key_create(tenant=tenant_a.tenant, name="old", scope=ApiKey.SCOPE_WRITE, actor=SYSTEM)
    api_key_revoke(api_key=api_key, actor=SYSTEM, reason="leaked")

    # when
    unknown = APIClient().post("/v1/accounts", ACCOUNT, format="json", HTTP_IDEMPOTENCY_KEY="k",
                               HTTP_AUTHORIZATION=f"Bearer {unknown_key()}", REMOTE_ADDR="10.0.0.1")
    revoked = APIClient().post("/v1/accounts", ACCOUNT, format="json", HTTP_IDEMPOTENCY_KEY="k",
                               HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="10.0.0.2")

    # then
    assert unknown.status_code == revoked.status_code == 401
    assert {k: v for k, v in unknown.json().items() if k != "request_id"} == {
        k: v for k, v in revoked.json().items() if k != "request_id"}
    assert {k: v for k, v in unknown.items() if k != "X-Request-Id"} == {
        k: v for k, v in revoked.items() if k != "X-Request-Id"}
    # and the revoked key's use is evidence for its tenant
    denial = AccessDenial.objects.get(actor=f"api_key:{api_key.id}")
    assert (denial.tenant_id, denial.reason, denial.client_address) == (
        tenant_a.tenant.id, "API key revoked", "10.0.0.2")


def test_a_revoked_key_repeated_leaves_one_counted_denial_until_the_budget_ends_it(tenant_a, defaults):
    # given
    defaults.ZENTRA_AUTH_FAILURES_PER_MINUTE = 5
    api_key, raw = api_key_create(tenant=tenant_a.tenant, name="old", scope=ApiKey.SCOPE_WRITE, actor=SYSTEM)
    api_key_revoke(api_key=api_key, actor=SYSTEM, reason="leaked")
    client = api_client(raw)

    # when
    answers = [client.get("/v1/accounts").status_code for _ in range(8)]

    # then
    assert answers == [401] * 5 + [429] * 3
    denial = AccessDenial.objects.get(actor=f"api_key:{api_key.id}")
    assert denial.repeat_count == 5 and denial.last_seen_at >= denial.created_at


# --- the client address ----------------------------------------------------------------------

@pytest.mark.parametrize(("proxies", "forwarded", "expected"), [
    (0, "6.6.6.6", "127.0.0.1"),  # no proxy of ours: the header is the client's own words
    (1, "6.6.6.6", "6.6.6.6"),  # one proxy that sets the header
    (1, "6.6.6.6, 10.9.8.7", "10.9.8.7"),  # one proxy that appends: the left part is the client's
    (2, "6.6.6.6, 10.9.8.7, 10.0.0.1", "10.9.8.7"),
    (2, "10.0.0.1", "127.0.0.1"),  # fewer hops than proxies: not believed
    (1, "not-an-address", "127.0.0.1"),
    (1, "", "127.0.0.1"),
])
def test_client_address(settings, proxies, forwarded, expected):
    # given
    settings.ZENTRA_TRUSTED_PROXIES = proxies
    request = RequestFactory().get("/v1/accounts", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="127.0.0.1")

    # then
    assert client_address_of(request) == expected


def test_a_client_cannot_buy_a_fresh_budget_with_x_forwarded_for(defaults):
    # given: no trusted proxy
    defaults.ZENTRA_AUTH_FAILURES_PER_MINUTE = 2

    # when
    answers = [APIClient().get("/v1/accounts", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(3)]

    # then
    assert answers == [401, 401, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(defaults):
    # given
    defaults.ZENTRA_TRUSTED_PROXIES = 1
    defaults.ZENTRA_AUTH_FAILURES_PER_MINUTE = 1

    # when
    first = APIClient().get("/v1/accounts", HTTP_X_FORWARDED_FOR="203.0.113.7")
    second = APIClient().get("/v1/accounts", HTTP_X_FORWARDED_FOR="203.0.113.8")
    again = APIClient().get("/v1/accounts", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7")

    # then
    assert (first.status_code, second.status_code, again.status_code) == (401, 401, 429)
    assert set(RequestRecord.objects.values_list("client_address", flat=True)) == {"203.0.113.7", "203.0.113.8"}


# --- what needs no key -----------------------------------------------------------------------

def test_what_needs_no_key_has_a_budget_per_address(client, defaults):
    # given
    defaults.ZENTRA_RATE_LIMIT_PER_MINUTE = 2

    # when
    answers = [client.get("/v1/") for _ in range(3)]
    elsewhere = client.get("/v1/", REMOTE_ADDR="10.0.0.9")

    # then
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[-1].json()["code"] == "rate_limited"
    assert int(answers[-1]["Retry-After"]) >= 1
    assert elsewhere.status_code == 200


# --- the contract ----------------------------------------------------------------------------

def test_openapi_documents_429_and_the_budget_headers_on_every_operation(client):
    # when
    document = client.get("/v1/openapi.json").json()

    # then
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "delete"):
                continue
            limited = operation["responses"]["429"]
            assert "rate_limited" in limited["description"], (method, path)
            assert limited["headers"]["Retry-After"]["required"] is True
            for code, response in operation["responses"].items():
                headers = response["headers"]
                assert all(headers[name]["required"] is True for name in RATE_HEADERS), (method, path, code)
                assert "X-Client-Request-Id" in headers and not headers["X-Client-Request-Id"].get("required")
