"""Every refusal is an RFC 9457 problem with the code of docs/api.md, and writes nothing."""

import json

import pytest

from audit.models import AccessDenial, RequestRecord
from ledger.models import Account
from tenants.models import ApiKey
from tenants.services.api_keys import api_key_create, api_key_revoke
from tests.conftest import SYSTEM, api_client
from webhooks.models import Event
from zentra.api.models import IdempotencyKey
from zentra.api.problems import flatten_validation_errors

pytestmark = pytest.mark.django_db

GOOD = {"customer": "cus_1", "currency": "USD", "account_type": "customer"}
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "request_id"}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert PROBLEM_FIELDS <= set(body), body
    assert set(body) <= PROBLEM_FIELDS | {"errors"}, body
    assert (body["status"], body["code"], body["type"]) == (status, code, f"https://zentra.dev/problems/{code}")
    assert body["title"] and body["detail"]
    assert body["request_id"] == response["X-Request-Id"]
    return body


def error_fields(body: dict) -> set:
    return {error["field"] for error in body["errors"]}


def snapshot(ctx) -> dict:
    return {
        "accounts": list(Account.objects.filter(tenant=ctx.tenant).order_by("id").values_list("id", "status")),
        "account_history": Account.history.filter(tenant_id=ctx.tenant.id).count(),
        "events": Event.objects.filter(tenant=ctx.tenant).count(),
        "keys": IdempotencyKey.objects.filter(tenant=ctx.tenant).count(),
    }


def post_raw(ctx, body: str, *, key: str = "raw", path: str = "/v1/accounts", client=None):
    return (client or ctx.client).post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


# --- 400 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    pytest.param('{"currency": "USD",', id="truncated"),
    pytest.param("{'currency': 'USD'}", id="single-quotes"),
    pytest.param('{"currency": "USD", "metadata": {"a": NaN}}', id="nan"),
    pytest.param("not json", id="text"),
])
def test_malformed_json_is_400_and_writes_nothing_but_the_stored_answer(tenant_a, raw):
    # given
    before = snapshot(tenant_a)

    # when
    response = post_raw(tenant_a, raw)

    # then
    assert_problem(response, 400, "validation_error")
    after = snapshot(tenant_a)
    assert {k: v for k, v in after.items() if k != "keys"} == {k: v for k, v in before.items() if k != "keys"}
    # A 4xx is stored for replay (docs/api.md), and that is the only row written.
    assert after["keys"] == before["keys"] + 1
    assert IdempotencyKey.objects.get(key="raw").response_status == 400


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("changes,field", [
    pytest.param({"allow_overdraft": "true"}, "allow_overdraft", id="string-for-boolean"),
    pytest.param({"allow_overdraft": 1}, "allow_overdraft", id="int-for-boolean"),
    pytest.param({"customer": 42}, "customer", id="int-for-string"),
    pytest.param({"name": ["x"]}, "name", id="list-for-string"),
    pytest.param({"currency": "XXX"}, "currency", id="currency-XXX"),
    pytest.param({"currency": "usd"}, "currency", id="currency-lower-case"),
    pytest.param({"currency": "USDX"}, "currency", id="currency-4-letters"),
    pytest.param({"currency": 840}, "currency", id="currency-number"),
    pytest.param({"account_type": "savings"}, "account_type", id="unknown-account-type"),
    pytest.param({"account_type": 1}, "account_type", id="int-account-type"),
    pytest.param({"normal_balance": "sideways"}, "normal_balance", id="unknown-normal-balance"),
    pytest.param({"overdraft_limit": 100}, "overdraft_limit", id="limit-without-overdraft"),
    pytest.param({"allow_overdraft": True, "overdraft_limit": -1}, "overdraft_limit", id="negative-limit"),
    pytest.param({"allow_overdraft": True, "overdraft_limit": 1.5}, "overdraft_limit", id="float-limit"),
    pytest.param({"allow_overdraft": True, "overdraft_limit": "100"}, "overdraft_limit", id="string-limit"),
    pytest.param({"allow_overdraft": True, "overdraft_limit": 2**63}, "overdraft_limit", id="oversized-limit"),
    pytest.param({"metadata": ["a"]}, "metadata", id="metadata-list"),
    pytest.param({"metadata": "a"}, "metadata", id="metadata-string"),
    pytest.param({"metadata": {"blob": "x" * 9000}}, "metadata", id="metadata-too-large"),
    pytest.param({"metadata": {"a": "nul\x00inside"}}, "metadata", id="metadata-nul-value"),
    pytest.param({"metadata": {"nul\x00key": 1}}, "metadata", id="metadata-nul-key"),
    pytest.param({"metadata": nested(40)}, "metadata", id="metadata-too-deep"),
    pytest.param({"customer": "nul\x00inside"}, "customer", id="nul-in-string"),
    pytest.param({"currency": None}, "currency", id="null-currency"),
])
def test_bad_field_is_400_with_its_name_and_writes_nothing(tenant_a, changes, field):
    # given
    before = snapshot(tenant_a)

    # when
    response = tenant_a.post("/v1/accounts", {**GOOD, **changes}, key="bad-field")

    # then
    body = assert_problem(response, 400, "validation_error")
    assert field in error_fields(body)
    assert all(error["message"] for error in body["errors"])
    after = snapshot(tenant_a)
    assert (after["accounts"], after["events"], after["account_history"]) == (
        before["accounts"], before["events"], before["account_history"])


@pytest.mark.parametrize("raw,field", [
    pytest.param('{"customer": "cus_1", "currency": "USD", "account_type": "customer", '
                 '"metadata": {"a": "\\ud800"}}', "metadata", id="metadata-lone-surrogate"),
    pytest.param('{"customer": "cus_1", "currency": "USD", "account_type": "customer", '
                 '"metadata": {"\\udfff": 1}}', "metadata", id="metadata-lone-surrogate-key"),
    pytest.param('{"customer": "cus_1", "currency": "USD", "account_type": "customer", '
                 '"metadata": {"a": 1e999}}', "metadata", id="metadata-infinite-number"),
    pytest.param('{"customer": "\\ud800", "currency": "USD", "account_type": "customer"}', "customer",
                 id="lone-surrogate-in-string"),
])
def test_json_postgres_cannot_store_is_400_not_500(tenant_a, raw, field):
    # given
    before = snapshot(tenant_a)

    # when
    response = post_raw(tenant_a, raw)

    # then
    body = assert_problem(response, 400, "validation_error")
    assert field in error_fields(body)
    after = snapshot(tenant_a)
    assert (after["accounts"], after["events"]) == (before["accounts"], before["events"])


@pytest.mark.parametrize("raw,field", [
    pytest.param('{"currency": "USD", "account_type": "sav\\u0000ings"}', "account_type", id="choice-with-nul"),
    pytest.param('{"currency": "USD", "account_type": "\\ud800"}', "account_type", id="choice-lone-surrogate"),
    pytest.param('{"currency": "USD", "account_type": "customer", "normal_balance": "\\u0000"}',
                 "normal_balance", id="normal-balance-nul"),
])
def test_error_message_quoting_unstorable_input_is_still_a_stored_400(tenant_a, raw, field):
    # given: DRF quotes the bad choice in its message, and 4xx bodies are stored for replay
    before = snapshot(tenant_a)

    # when
    first = post_raw(tenant_a, raw, key="quoted-input")
    replay = post_raw(tenant_a, raw, key="quoted-input")

    # then
    body = assert_problem(first, 400, "validation_error")
    assert field in error_fields(body)
    assert "\\u0000" not in first.content.decode() and "\\ud800" not in first.content.decode()
    assert replay.status_code == 400 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == body
    after = snapshot(tenant_a)
    assert (after["accounts"], after["events"], after["keys"]) == (
        before["accounts"], before["events"], before["keys"] + 1)
    assert IdempotencyKey.objects.get(key="quoted-input").status == IdempotencyKey.COMPLETED


@pytest.mark.parametrize("raw", [
    pytest.param("[" * 100_000 + "]" * 100_000, id="deep-array"),
    pytest.param('{"metadata": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}", id="deep-object"),
])
def test_json_nested_beyond_the_parser_is_400_not_500(tenant_a, raw):
    # given
    before = snapshot(tenant_a)

    # when
    response = post_raw(tenant_a, raw)

    # then
    assert_problem(response, 400, "validation_error")
    after = snapshot(tenant_a)
    assert (after["accounts"], after["events"]) == (before["accounts"], before["events"])


@pytest.mark.parametrize("detail,fields", [
    ({"entries": {0: {"amount": ["bad"]}, 2: {"direction": ["bad"]}}}, ["entries[0].amount", "entries[2].direction"]),
    ({"entries": [{"amount": ["bad"]}, {}]}, ["entries[0].amount"]),
    ({"tags": {1: ["bad"]}}, ["tags[1]"]),
    ({"non_field_errors": ["bad"]}, [None]),
    ({"account_type": ["bad", "worse"]}, ["account_type", "account_type"]),
])
def test_nested_validation_errors_are_named_by_their_path(detail, fields):
    # when
    errors = flatten_validation_errors(detail)

    # then
    assert [error["field"] for error in errors] == fields


@pytest.mark.parametrize("raw", ["[]", '"x"', "null", "1"])
def test_body_that_is_not_an_object_is_400(tenant_a, raw):
    # when
    response = post_raw(tenant_a, raw)

    # then
    assert_problem(response, 400, "validation_error")
    assert not Account.objects.filter(tenant=tenant_a.tenant, is_system=False).exists()


def test_missing_required_fields_are_each_named(tenant_a):
    # when
    response = tenant_a.post("/v1/accounts", {})

    # then
    body = assert_problem(response, 400, "validation_error")
    assert error_fields(body) == {"currency", "account_type"}
    assert "currency" in body["detail"] and "account_type" in body["detail"]


def test_transition_reason_of_the_wrong_type_is_400_and_changes_nothing(tenant_a, make_account):
    # given
    account = make_account()
    before = snapshot(tenant_a)

    # when
    response = tenant_a.post(f"/v1/accounts/{account['id']}/freeze", {"reason": 42})

    # then
    body = assert_problem(response, 400, "validation_error")
    assert error_fields(body) == {"reason"}
    after = snapshot(tenant_a)
    assert {k: v for k, v in after.items() if k != "keys"} == {k: v for k, v in before.items() if k != "keys"}


@pytest.mark.parametrize("path,params,field", [
    ("/v1/accounts", {"limit": "\u00b2"}, "limit"),
    ("/v1/accounts", {"starting_after": "acct_\x00"}, "starting_after"),
    ("/v1/accounts", {"customer": "cus\x00"}, "customer"),
    ("/v1/events", {"type": "account.\x00"}, "type"),
])
def test_query_values_postgres_cannot_compare_are_400_not_500(tenant_a, path, params, field):
    # when
    response = tenant_a.get(path, **params)

    # then
    body = assert_problem(response, 400, "validation_error")
    assert error_fields(body) == {field}


@pytest.mark.parametrize("query", ["limit=abc&limit=", "limit=5&limit=6", "status=active&status=frozen"])
def test_a_query_parameter_given_twice_is_400(tenant_a, query):
    # when: which of the two values counts would be a guess
    response = tenant_a.client.get(f"/v1/accounts?{query}")
    # then
    body = assert_problem(response, 400, "validation_error")
    assert error_fields(body) == {query.split("=", 1)[0]}


# --- 401 ------------------------------------------------------------------------------------

def _unknown_key() -> str:
    return "zk_" + "A" * 12 + "_" + "b" * 32


@pytest.mark.parametrize("authorization", [
    pytest.param(None, id="no-header"),
    pytest.param("Basic dXNlcjpwYXNz", id="basic-scheme"),
    pytest.param("Token zk_abc", id="token-scheme"),
    pytest.param("Bearer", id="bearer-without-key"),
    pytest.param("Bearer ", id="bearer-blank"),
    pytest.param("Bearer not-a-key", id="malformed-key"),
    pytest.param("Bearer zk_short_secret", id="malformed-zk-key"),
    pytest.param("Bearer zk_AAAAAAAAAAAA_" + "b" * 31 + "!", id="non-alnum-secret"),
    pytest.param("Bearer " + _unknown_key(), id="unknown-key"),
])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_missing_or_bad_key_is_401_with_www_authenticate(tenant_a, authorization, method):
    # given
    before = snapshot(tenant_a)
    client = api_client("unused")
    if authorization is None:
        client.credentials()
    else:
        client.credentials(HTTP_AUTHORIZATION=authorization)

    # when
    if method == "GET":
        response = client.get("/v1/accounts")
    else:
        response = client.post("/v1/accounts", GOOD, format="json", HTTP_IDEMPOTENCY_KEY="unauth")

    # then
    assert_problem(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == 'Bearer realm="zentra"'
    assert snapshot(tenant_a) == before
    record = RequestRecord.objects.get(request_id=response["X-Request-Id"])
    assert (record.status, record.tenant_id, record.actor) == (401, "", "")


def test_revoked_key_is_401_and_leaves_a_denial(tenant_a):
    # given
    api_key, raw = api_key_create(tenant=tenant_a.tenant, name="to revoke", scope=ApiKey.SCOPE_WRITE, actor=SYSTEM)
    client = api_client(raw)
    assert client.get("/v1/accounts").status_code == 200
    api_key_revoke(api_key=api_key, actor=SYSTEM, reason="test")
    before = snapshot(tenant_a)

    # when
    response = client.post("/v1/accounts", GOOD, format="json", HTTP_IDEMPOTENCY_KEY="revoked")

    # then: answered like an unknown key (tests/api/test_rate_limits.py compares the two whole)
    body = assert_problem(response, 401, "authentication_failed")
    assert body["detail"] == "Invalid API key"
    assert response["WWW-Authenticate"] == 'Bearer realm="zentra"'
    assert snapshot(tenant_a) == before
    denial = AccessDenial.objects.get(request_id=response["X-Request-Id"])
    assert (denial.actor, denial.tenant_id, denial.action) == (
        f"api_key:{api_key.id}", tenant_a.tenant.id, "POST /v1/accounts")


# --- 403 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/v1/accounts", "freeze"])
def test_read_only_key_writing_is_403_with_a_denial_and_writes_nothing(tenant_a, make_account, target):
    # given
    account = make_account()
    path = f"/v1/accounts/{account['id']}/freeze" if target == "freeze" else target
    client = tenant_a.read_only_client()
    read_key = ApiKey.objects.get(tenant=tenant_a.tenant, scope=ApiKey.SCOPE_READ)
    before = snapshot(tenant_a)

    # when
    response = client.post(path, GOOD if target == "/v1/accounts" else {}, format="json",
                           HTTP_IDEMPOTENCY_KEY="read-only")
    allowed = client.get(f"/v1/accounts/{account['id']}")

    # then
    assert_problem(response, 403, "permission_denied")
    assert allowed.status_code == 200
    assert snapshot(tenant_a) == before
    denial = AccessDenial.objects.get(request_id=response["X-Request-Id"])
    assert (denial.actor, denial.tenant_id, denial.role, denial.action) == (
        f"api_key:{read_key.id}", tenant_a.tenant.id, "read", f"POST {path}")


def test_denial_of_a_path_with_a_nul_is_still_written(tenant_a):
    # given: evidence text that PostgreSQL cannot store as it is
    client = tenant_a.read_only_client()

    # when
    response = client.post("/v1/accounts/acct_\x00/freeze", {}, format="json", HTTP_IDEMPOTENCY_KEY="nul-path")

    # then
    assert_problem(response, 403, "permission_denied")
    denial = AccessDenial.objects.get(request_id=response["X-Request-Id"])
    assert denial.action.startswith("POST /v1/accounts/acct_") and "\x00" not in denial.action
    assert RequestRecord.objects.filter(request_id=response["X-Request-Id"], status=403).exists()


# --- 404 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/accounts/acct_nope", "/v1/accounts/acct_nope/balance",
                                  "/v1/events/evt_nope", "/v1/accounts/acct_\x00"])
def test_unknown_id_is_404(tenant_a, path):
    # when
    response = tenant_a.get(path)

    # then
    body = assert_problem(response, 404, "not_found")
    assert "errors" not in body


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/v1/nope", "/v1/accounts/", "/v1/accounts/acct_1/nope", "/v1/v1/"])
@pytest.mark.parametrize("authenticated", [True, False])
def test_unknown_path_under_v1_is_a_404_problem_even_with_debug(tenant_a, settings, debug, path, authenticated):
    # given
    settings.DEBUG = debug
    client = tenant_a.client if authenticated else api_client("unused")
    if not authenticated:
        client.credentials()

    # when
    response = client.get(path)

    # then
    body = assert_problem(response, 404, "not_found")
    assert path in body["detail"]
    assert b"<html" not in response.content.lower()


# --- 405 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [("delete", "/v1/accounts"), ("put", "/v1/accounts/{id}"),
                                         ("patch", "/v1/accounts/{id}"), ("delete", "/v1/accounts/{id}"),
                                         ("get", "/v1/accounts/{id}/freeze"), ("post", "/v1/events")])
def test_unsupported_method_is_405_and_changes_nothing(tenant_a, make_account, method, path):
    # given
    account = make_account()
    before = snapshot(tenant_a)

    # when
    response = getattr(tenant_a.client, method)(path.format(id=account["id"]), {"status": "closed"},
                                                format="json", HTTP_IDEMPOTENCY_KEY="method")

    # then
    assert_problem(response, 405, "method_not_allowed")
    assert response["Allow"]
    after = snapshot(tenant_a)
    assert (after["accounts"], after["events"], after["account_history"]) == (
        before["accounts"], before["events"], before["account_history"])


@pytest.mark.parametrize("path", ["/v1/accounts/{id}", "/v1/accounts/{id}/balance", "/v1/events", "/v1/trace/{id}"])
def test_a_post_to_a_read_only_resource_is_405_before_the_idempotency_key_gate(tenant_a, make_account, path):
    # given
    account = make_account()
    keys_before = IdempotencyKey.objects.filter(tenant=tenant_a.tenant).count()

    # when: no Idempotency-Key, which a POST the resource accepted would need
    response = tenant_a.client.post(path.format(id=account["id"]), {}, format="json")

    # then: the method is what is wrong, and nothing was claimed
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" not in response["Allow"] and "GET" in response["Allow"]
    assert IdempotencyKey.objects.filter(tenant=tenant_a.tenant).count() == keys_before


# --- 409 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("setup,action", [
    (["freeze"], "freeze"),
    ([], "unfreeze"),
    (["close"], "close"),
    (["close"], "freeze"),
    (["close"], "unfreeze"),
])
def test_invalid_transition_is_409_and_changes_nothing(tenant_a, make_account, setup, action):
    # given
    account = make_account()
    for step in setup:
        assert tenant_a.post(f"/v1/accounts/{account['id']}/{step}").status_code == 200
    before = snapshot(tenant_a)

    # when
    response = tenant_a.post(f"/v1/accounts/{account['id']}/{action}", {"reason": "again"})

    # then
    body = assert_problem(response, 409, "invalid_state_transition")
    assert account["id"] in body["detail"]
    after = snapshot(tenant_a)
    assert {k: v for k, v in after.items() if k != "keys"} == {k: v for k, v in before.items() if k != "keys"}


# --- 413 ------------------------------------------------------------------------------------

def test_body_over_the_cap_is_413_and_writes_nothing(tenant_a, settings):
    # given
    settings.ZENTRA_MAX_REQUEST_BYTES = 200
    big = json.dumps({**GOOD, "name": "x" * 300})
    small = json.dumps(GOOD)
    assert len(small) < 200 < len(big)
    before = snapshot(tenant_a)

    # when
    refused = post_raw(tenant_a, big, key="too-big")

    # then
    body = assert_problem(refused, 413, "payload_too_large")
    assert "200" in body["detail"]
    assert snapshot(tenant_a) == before
    assert RequestRecord.objects.get(request_id=refused["X-Request-Id"]).status == 413
    # and the same request under the cap goes through
    assert post_raw(tenant_a, small, key="small-enough").status_code == 201


# --- 415 ------------------------------------------------------------------------------------

def test_body_that_is_not_json_is_415(tenant_a):
    # when
    response = tenant_a.client.post("/v1/accounts", "currency=USD", content_type="application/x-www-form-urlencoded",
                                    HTTP_IDEMPOTENCY_KEY="form")

    # then
    assert_problem(response, 415, "unsupported_media_type")
    assert not Account.objects.filter(tenant=tenant_a.tenant, is_system=False).exists()


# --- 422 ------------------------------------------------------------------------------------

def test_reused_key_is_422_and_writes_nothing(tenant_a):
    # given: closing a non-empty account (the other 422 here) needs ledger postings,
    # so the idempotency refusal stands in for the 422 family
    assert tenant_a.post("/v1/accounts", GOOD, key="once").status_code == 201
    before = snapshot(tenant_a)

    # when
    response = tenant_a.post("/v1/accounts", {**GOOD, "currency": "EUR"}, key="once")

    # then
    assert_problem(response, 422, "idempotency_key_reused")
    assert snapshot(tenant_a) == before


# --- 500 ------------------------------------------------------------------------------------

def test_unexpected_error_is_a_500_problem_without_internals(tenant_a, monkeypatch):
    # given
    def broken(**kwargs):
        raise RuntimeError("secret-internal-detail")

    monkeypatch.setattr("ledger.api.views.account_create", broken)
    before = snapshot(tenant_a)

    # when
    response = tenant_a.post("/v1/accounts", GOOD, key="boom")

    # then
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"].startswith("req_")
    text = response.content.decode()
    for leak in ("Traceback", "RuntimeError", "secret-internal-detail", ".py"):
        assert leak not in text
    assert snapshot(tenant_a) == before
    assert RequestRecord.objects.get(request_id=body["request_id"]).status == 500


def test_fault_after_the_account_row_rolls_back_the_account_and_its_event(tenant_a, monkeypatch):
    # given: the event cannot be written, after the account row already was
    def broken_emit(**kwargs):
        raise RuntimeError("outbox down")

    monkeypatch.setattr("ledger.services.accounts.event_emit", broken_emit)
    before = snapshot(tenant_a)

    # when
    response = tenant_a.post("/v1/accounts", GOOD, key="half-done")

    # then: no account without its event
    assert_problem(response, 500, "internal_error")
    assert snapshot(tenant_a) == before
