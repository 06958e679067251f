"""Idempotency-Key, as docs/api.md says: one effect per (tenant, key), whatever the client retries."""

import json
import re
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

import zentra.tasks
from audit.actors import Actor
from audit.context import reset_request_id, set_request_id
from audit.models import RequestRecord
from ledger.models import Account
from ledger.services.accounts import account_create
from tests.conftest import api_client
from webhooks.models import Event
from zentra.api.errors import IdempotencyKeyRequired
from zentra.api.idempotency import KEY_PATTERN, idempotency_begin, idempotency_keys_purge, parse_key
from zentra.api.models import IdempotencyKey

pytestmark = pytest.mark.django_db

BODY = {"customer": "cus_idem", "currency": "USD", "account_type": "customer"}


def customer_accounts(ctx):
    return Account.objects.filter(tenant=ctx.tenant, is_system=False)


def written(ctx) -> tuple[int, int, int]:
    """What a request may write for a tenant: accounts, events, stored keys."""
    return (customer_accounts(ctx).count(), Event.objects.filter(tenant=ctx.tenant).count(),
            IdempotencyKey.objects.filter(tenant=ctx.tenant).count())


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"], body["type"]) == (status, code, f"https://zentra.dev/problems/{code}")
    assert body["request_id"] == response["X-Request-Id"]
    return body


# --- replay -------------------------------------------------------------------------------

def test_replay_returns_the_stored_answer_without_a_second_effect(tenant_a):
    # given
    first = tenant_a.post("/v1/accounts", BODY, key="replay-1")
    assert first.status_code == 201
    before = written(tenant_a)

    # when
    second = tenant_a.post("/v1/accounts", BODY, key="replay-1")

    # then
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert written(tenant_a) == before
    assert customer_accounts(tenant_a).get().id == first.json()["id"]
    assert Event.objects.filter(resource_id=first.json()["id"], type="account.created").count() == 1
    record = RequestRecord.objects.get(request_id=second["X-Request-Id"])
    assert (record.status, record.idempotency_key, record.idempotent_replay) == (201, "replay-1", True)


def test_replay_is_the_stored_body_even_after_the_object_changed(tenant_a):
    # given: the account was frozen after it was created
    first = tenant_a.post("/v1/accounts", BODY, key="replay-stale")
    assert tenant_a.post(f"/v1/accounts/{first.json()['id']}/freeze").status_code == 200

    # when
    again = tenant_a.post("/v1/accounts", BODY, key="replay-stale")

    # then: the answer the first request got, not a new read
    assert again.status_code == 201
    assert again.json()["status"] == "active"
    assert again.json() == first.json()


def test_key_order_and_whitespace_of_the_json_body_do_not_change_its_fingerprint(tenant_a):
    # given
    first = tenant_a.post("/v1/accounts", BODY, key="fingerprint")
    reordered = json.dumps(dict(reversed(list(BODY.items()))), indent=2)

    # when
    again = tenant_a.client.post("/v1/accounts", reordered, content_type="application/json",
                                 HTTP_IDEMPOTENCY_KEY="fingerprint")

    # then
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


# --- reuse ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method_path_body", [
    pytest.param(("/v1/accounts", {**BODY, "customer": "someone_else"}), id="other-body"),
    pytest.param(("/v1/accounts", {**BODY, "metadata": {"extra": True}}), id="added-field"),
    pytest.param(("freeze", {}), id="other-path"),
])
def test_same_key_with_another_request_is_422_and_writes_nothing(tenant_a, method_path_body):
    # given
    first = tenant_a.post("/v1/accounts", BODY, key="reused")
    stored = IdempotencyKey.objects.get(tenant=tenant_a.tenant, key="reused")
    path, body = method_path_body
    if path == "freeze":
        path = f"/v1/accounts/{first.json()['id']}/freeze"
    before = written(tenant_a)

    # when
    response = tenant_a.post(path, body, key="reused")

    # then
    problem = assert_problem(response, 422, "idempotency_key_reused")
    assert "reused" in problem["detail"] and "POST /v1/accounts" in problem["detail"]
    assert written(tenant_a) == before
    assert customer_accounts(tenant_a).get().status == "active"
    after = IdempotencyKey.objects.get(pk=stored.pk)
    assert (after.fingerprint, after.response_status, after.response_body) == (
        stored.fingerprint, 201, first.json())


def test_same_key_in_two_tenants_is_two_requests(tenant_a, tenant_b):
    # when
    a = tenant_a.post("/v1/accounts", BODY, key="shared-key")
    b = tenant_b.post("/v1/accounts", BODY, key="shared-key")

    # then
    assert (a.status_code, b.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in b
    assert a.json()["id"] != b.json()["id"]
    assert customer_accounts(tenant_a).get().id == a.json()["id"]
    assert customer_accounts(tenant_b).get().id == b.json()["id"]
    assert IdempotencyKey.objects.filter(key="shared-key").count() == 2


# --- the key itself -------------------------------------------------------------------------

def test_missing_key_is_400_and_writes_nothing(tenant_a):
    # given
    before = written(tenant_a)

    # when
    response = tenant_a.client.post("/v1/accounts", BODY, format="json")

    # then
    assert_problem(response, 400, "idempotency_key_required")
    assert written(tenant_a) == before


@pytest.mark.parametrize("raw_key", [
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("k" * 256, id="256-chars"),
    pytest.param('"' + "k" * 256 + '"', id="quoted-256-chars"),
    pytest.param("abc\x01def", id="control-char"),
    pytest.param("abc\x7f", id="delete-char"),
    pytest.param("tab\tinside", id="tab"),
    pytest.param("caf\u00e9", id="non-ascii"),
    pytest.param("nul\x00", id="nul"),
    pytest.param('"a"b"', id="bad-quoting"),
    pytest.param('"a\\x"', id="bad-escape"),
    pytest.param('""', id="quoted-empty"),
])
def test_malformed_key_is_400_and_writes_nothing(tenant_a, raw_key):
    # given
    before = written(tenant_a)

    # when
    response = tenant_a.client.post("/v1/accounts", BODY, format="json", HTTP_IDEMPOTENCY_KEY=raw_key)

    # then
    assert_problem(response, 400, "idempotency_key_required")
    assert written(tenant_a) == before


@pytest.mark.parametrize("raw_key", ["k", "k" * 255, "~!#$%&'*+-.^_`|:;<=>?@[]{}()/ spaces inside"])
def test_keys_of_1_to_255_printable_characters_are_accepted(tenant_a, raw_key):
    # when
    response = tenant_a.post("/v1/accounts", BODY, key=raw_key)

    # then
    assert response.status_code == 201, response.content
    assert IdempotencyKey.objects.get(tenant=tenant_a.tenant).key == raw_key


@pytest.mark.parametrize("quoted,bare", [('"abc"', "abc"), ('"a\\"b\\\\c"', 'a"b\\c')])
def test_rfc8941_quoted_key_is_the_same_key_as_the_bare_one(tenant_a, quoted, bare):
    # given
    first = tenant_a.post("/v1/accounts", BODY, key=quoted)

    # when
    again = tenant_a.post("/v1/accounts", BODY, key=bare)

    # then
    assert first.status_code == 201
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert IdempotencyKey.objects.get(tenant=tenant_a.tenant).key == bare
    assert customer_accounts(tenant_a).count() == 1


# --- what is stored -------------------------------------------------------------------------

def test_validation_failure_is_stored_and_replayed(tenant_a):
    # given
    bad = {**BODY, "currency": "XXX"}
    first = tenant_a.post("/v1/accounts", bad, key="bad-currency")
    assert_problem(first, 400, "validation_error")

    # when
    again = tenant_a.post("/v1/accounts", bad, key="bad-currency")
    corrected = tenant_a.post("/v1/accounts", BODY, key="bad-currency")

    # then: the 400 is replayed as it was; the key stays bound to the failed request
    assert again.status_code == 400
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == "application/problem+json"
    assert again.json() == first.json()
    assert_problem(corrected, 422, "idempotency_key_reused")
    stored = IdempotencyKey.objects.get(tenant=tenant_a.tenant, key="bad-currency")
    assert (stored.status, stored.response_status) == (IdempotencyKey.COMPLETED, 400)
    assert customer_accounts(tenant_a).count() == 0


def test_server_error_is_not_stored_so_the_retry_runs(tenant_a, monkeypatch):
    # given: the service fails once
    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("ledger.api.views.account_create", broken)
    failed = tenant_a.post("/v1/accounts", BODY, key="retry-after-500")
    assert_problem(failed, 500, "internal_error")
    assert not IdempotencyKey.objects.filter(key="retry-after-500").exists()
    assert customer_accounts(tenant_a).count() == 0
    monkeypatch.undo()

    # when
    retried = tenant_a.post("/v1/accounts", BODY, key="retry-after-500")

    # then
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert customer_accounts(tenant_a).get().id == retried.json()["id"]
    stored = IdempotencyKey.objects.get(key="retry-after-500")
    assert (stored.status, stored.response_status) == (IdempotencyKey.COMPLETED, 201)


def test_stored_key_is_kept_for_the_configured_retention(tenant_a):
    # when
    tenant_a.post("/v1/accounts", BODY, key="ttl")

    # then
    stored = IdempotencyKey.objects.get(key="ttl")
    assert stored.expires_at - stored.created_at == timedelta(hours=24)
    assert (stored.method, stored.path) == ("POST", "/v1/accounts")


# --- in progress ----------------------------------------------------------------------------

def claim(ctx, key: str, body=BODY, path="/v1/accounts"):
    """A request with this key that started and has not finished."""
    return idempotency_begin(tenant_id=ctx.tenant.id, raw_key=key, method="POST", path=path,
                             body=json.dumps(body).encode(), request_id="req_first")


def test_key_in_progress_is_409_with_retry_after(tenant_a):
    # given
    claim(tenant_a, "slow")
    before = written(tenant_a)

    # when
    response = tenant_a.post("/v1/accounts", BODY, key="slow")

    # then
    assert_problem(response, 409, "idempotency_request_in_progress")
    assert response["Retry-After"] == "1"
    assert written(tenant_a) == before
    stored = IdempotencyKey.objects.get(key="slow")
    assert (stored.status, stored.request_id) == (IdempotencyKey.IN_PROGRESS, "req_first")


def test_key_in_progress_with_another_body_is_reuse_not_progress(tenant_a):
    # given
    claim(tenant_a, "slow-other", body={**BODY, "customer": "other"})

    # when
    response = tenant_a.post("/v1/accounts", BODY, key="slow-other")

    # then
    assert_problem(response, 422, "idempotency_key_reused")
    assert customer_accounts(tenant_a).count() == 0


def test_claim_whose_lease_ran_out_is_taken_over(tenant_a):
    # given: the first request's process died; its lease has run out
    claim(tenant_a, "dead-worker")
    IdempotencyKey.objects.filter(key="dead-worker").update(locked_until=timezone.now() - timedelta(seconds=1))

    # when
    response = tenant_a.post("/v1/accounts", BODY, key="dead-worker")

    # then
    assert response.status_code == 201
    stored = IdempotencyKey.objects.get(key="dead-worker")
    assert (stored.status, stored.response_status) == (IdempotencyKey.COMPLETED, 201)
    assert stored.request_id == response["X-Request-Id"]
    assert customer_accounts(tenant_a).count() == 1


def test_claim_whose_change_committed_is_never_run_again(tenant_a):
    # given: the first request committed its change (its event carries the request's id, as in
    # the view), then its process died before the answer was stored
    first = claim(tenant_a, "died-after-commit")
    token = set_request_id(IdempotencyKey.objects.get(pk=first.record_id).request_id)
    try:
        account_create(tenant=tenant_a.tenant, currency="USD", account_type="customer", customer="cus_idem",
                       actor=Actor.system("tests"))
    finally:
        reset_request_id(token)
    IdempotencyKey.objects.filter(key="died-after-commit").update(locked_until=timezone.now() - timedelta(seconds=1))
    before = written(tenant_a)

    # when: the client retries once the lease has run out
    response = tenant_a.post("/v1/accounts", BODY, key="died-after-commit")

    # then: no second account; the client learns the outcome must be looked up
    assert_problem(response, 409, "idempotency_outcome_unknown")
    assert written(tenant_a) == before
    assert IdempotencyKey.objects.get(key="died-after-commit").status == IdempotencyKey.IN_PROGRESS


def test_answer_failing_after_the_commit_is_not_run_again(tenant_a, monkeypatch):
    # given: the account commits, then building the answer fails (a 500)
    def broken_answer(*args, **kwargs):
        raise RuntimeError("answer lost")

    monkeypatch.setattr("ledger.api.views.account_body", broken_answer)
    failed = tenant_a.post("/v1/accounts", BODY, key="answer-lost")
    assert_problem(failed, 500, "internal_error")
    assert customer_accounts(tenant_a).count() == 1
    monkeypatch.undo()

    # when: the client retries the 500
    retry = tenant_a.post("/v1/accounts", BODY, key="answer-lost")

    # then: the change is not made twice
    assert_problem(retry, 409, "idempotency_outcome_unknown")
    assert customer_accounts(tenant_a).count() == 1


def test_a_refused_request_does_not_spend_its_key(tenant_a):
    # given: a request refused inside its service (nothing committed)
    refused = tenant_a.post("/v1/accounts/acct_missing/freeze", {}, key="refused-once")
    assert refused.status_code == 404
    # then: the claim holds the stored 404, and no event claims an effect for its request
    stored = IdempotencyKey.objects.get(key="refused-once")
    assert (stored.status, stored.response_status) == (IdempotencyKey.COMPLETED, 404)
    assert not Event.objects.filter(tenant=tenant_a.tenant, request_id=stored.request_id).exists()


# --- retention ------------------------------------------------------------------------------

@pytest.fixture
def old_and_new_keys(tenant_a, tenant_b):
    tenant_a.post("/v1/accounts", BODY, key="old-a")
    tenant_b.post("/v1/accounts", BODY, key="old-b")
    tenant_a.post("/v1/accounts", BODY, key="new-a")
    IdempotencyKey.objects.filter(key__startswith="old-").update(expires_at=timezone.now() - timedelta(seconds=1))
    return tenant_a, tenant_b


def test_purge_deletes_expired_keys_only(old_and_new_keys):
    # when
    deleted = idempotency_keys_purge()

    # then
    assert deleted == 2
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new-a"]


def test_purge_task_deletes_expired_keys_only(old_and_new_keys):
    # when
    deleted = zentra.tasks.idempotency_keys_purge()

    # then
    assert deleted == 2
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new-a"]


def test_purge_task_is_on_the_beat_schedule():
    from zentra.celery import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "zentra.tasks.idempotency_keys_purge" in tasks


def test_every_key_is_gone_after_the_retention(tenant_a):
    # given
    tenant_a.post("/v1/accounts", BODY, key="lives-24h")

    # when
    kept = idempotency_keys_purge(now=timezone.now() + timedelta(hours=23))
    purged = idempotency_keys_purge(now=timezone.now() + timedelta(hours=24, seconds=1))

    # then
    assert (kept, purged) == (0, 1)
    assert not IdempotencyKey.objects.exists()


def test_expired_key_not_yet_purged_is_free_again(tenant_a):
    # given
    first = tenant_a.post("/v1/accounts", BODY, key="expired")
    IdempotencyKey.objects.filter(key="expired").update(expires_at=timezone.now() - timedelta(seconds=1))

    # when
    again = tenant_a.post("/v1/accounts", {**BODY, "customer": "new_body"}, key="expired")

    # then
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]
    stored = IdempotencyKey.objects.get(key="expired")
    assert stored.expires_at > timezone.now() + timedelta(hours=23)
    assert stored.response_body == again.json()


# --- real concurrency -----------------------------------------------------------------------

THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_parallel_requests_with_one_key_have_one_effect(tenant_a):
    # given: eight clients, each on its own thread and database connection, released together
    barrier = threading.Barrier(THREADS)
    responses, errors = [], []

    def send():
        client = api_client(tenant_a.raw_key)
        try:
            barrier.wait(timeout=10)
            responses.append(client.post("/v1/accounts", BODY, format="json", HTTP_IDEMPOTENCY_KEY="race"))
        except Exception as exc:  # surfaced below: a thread must not fail silently
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(THREADS)]

    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then
    assert not errors
    assert len(responses) == THREADS
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    originals = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r]
    assert len(originals) == 1
    account_id = originals[0].json()["id"]
    assert {r.json()["id"] for r in responses if r.status_code == 201} == {account_id}
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["code"] == "idempotency_request_in_progress"
        assert conflict["Retry-After"] == "1"
    assert list(customer_accounts(tenant_a).values_list("id", flat=True)) == [account_id]
    assert Event.objects.filter(tenant=tenant_a.tenant, resource_id=account_id).count() == 1
    assert Event.objects.filter(tenant=tenant_a.tenant, type="account.created").exclude(
        data__object__is_system=True).count() == 1
    stored = IdempotencyKey.objects.get(tenant=tenant_a.tenant, key="race")
    assert (stored.status, stored.response_status) == (IdempotencyKey.COMPLETED, 201)


# --- the key's form, as the OpenAPI document states it ------------------------------------------

# Quotes and backslashes (the quoted form), spaces at either end, the edges of printable ASCII.
KEY_CHARACTERS = st.sampled_from(['"', "\\", " ", "\t", "a", "~", "!", "#", "[", "]", "\x1f", "\x7f", "\xe9"])
KEYS = st.one_of(
    st.text(KEY_CHARACTERS, max_size=8),
    st.text(KEY_CHARACTERS, max_size=6).map(lambda inner: f'"{inner}"'),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=253, max_size=258),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=253, max_size=258).map(lambda k: f'"{k}"'),
)


def accepted(raw: str) -> bool:
    try:
        parse_key(raw)
    except IdempotencyKeyRequired:
        return False
    return True


@settings(max_examples=3000, deadline=None)
@given(KEYS)
def test_the_documented_key_pattern_matches_exactly_the_keys_the_server_accepts(raw):
    # A header value arrives without the spaces around it (HTTP strips them): only such values.
    if raw != raw.strip(" \t"):
        return
    assert bool(re.fullmatch(KEY_PATTERN, raw)) == accepted(raw), repr(raw)


def test_every_post_documents_the_key_with_that_pattern(client):
    document = client.get("/v1/openapi.json").json()
    # Every POST an API key makes (provider events are signed by the provider instead).
    posts = [(path, item["post"]) for path, item in document["paths"].items()
             if "post" in item and {"ApiKey": []} in item["post"].get("security", [])]
    assert posts
    for path, operation in posts:
        [header] = [p for p in operation["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        assert header["required"] and header["schema"]["pattern"] == KEY_PATTERN, path
