"""The accounts endpoints and the edge every API call passes: request ids and evidence."""

import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from audit.models import RequestRecord
from ledger.models import Account
from tenants.models import ApiKey
from tenants.services.api_keys import api_key_create
from tests.conftest import SYSTEM, api_client
from webhooks.models import Event

pytestmark = pytest.mark.django_db

GENERATED_REQUEST_ID = re.compile(r"^req_[0-9A-HJKMNP-TV-Z]{26}$")
ACCOUNT_FIELDS = {"id", "object", "customer", "name", "currency", "account_type", "normal_balance", "status",
                  "allow_overdraft", "overdraft_limit", "is_system", "under_review", "shards", "balances", "metadata",
                  "created_at"}


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def write_key(ctx) -> ApiKey:
    return ApiKey.objects.get(tenant=ctx.tenant, name="bootstrap")


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["data"]]


# --- create ---------------------------------------------------------------------------------

def test_create_with_every_field(tenant_a):
    # given
    body = {"customer": "cus_42", "currency": "EUR", "account_type": "merchant", "name": "Main merchant",
            "normal_balance": "debit", "allow_overdraft": True, "overdraft_limit": 5000,
            "metadata": {"region": "eu", "tier": 2, "tags": ["a", "b"], "nested": {"ok": True}}}

    # when
    response = tenant_a.post("/v1/accounts", body)

    # then
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == ACCOUNT_FIELDS
    assert data["id"].startswith("acct_")
    assert {key: data[key] for key in body} == body
    assert (data["object"], data["status"], data["is_system"]) == ("account", "active", False)
    assert data["balances"] == {"posted": 0, "held": 0, "available": 5000}
    assert abs(parse_time(data["created_at"]) - timezone.now()) < timedelta(seconds=30)
    account = Account.objects.get(pk=data["id"])
    assert (account.tenant_id, account.customer, account.currency, account.account_type, account.name,
            account.normal_balance, account.allow_overdraft, account.overdraft_limit, account.metadata) == (
        tenant_a.tenant.id, "cus_42", "EUR", "merchant", "Main merchant", "debit", True, 5000, body["metadata"])
    event = Event.objects.get(resource_id=data["id"])
    assert (event.type, event.tenant_id, event.actor) == (
        "account.created", tenant_a.tenant.id, f"api_key:{write_key(tenant_a).id}")
    assert event.data == {"object": data}
    assert event.request_id == response["X-Request-Id"]


def test_create_with_defaults(tenant_a):
    # when
    response = tenant_a.post("/v1/accounts", {"currency": "JPY", "account_type": "operating"})

    # then
    assert response.status_code == 201, response.content
    data = response.json()
    assert {key: data[key] for key in ("customer", "name", "currency", "account_type", "normal_balance", "status",
                                       "allow_overdraft", "overdraft_limit", "is_system", "metadata", "balances")} == {
        "customer": "", "name": "", "currency": "JPY", "account_type": "operating", "normal_balance": "credit",
        "status": "active", "allow_overdraft": False, "overdraft_limit": None, "is_system": False, "metadata": {},
        "balances": {"posted": 0, "held": 0, "available": 0}}


def test_overdraft_without_a_limit_has_no_available_ceiling(tenant_a):
    # when
    response = tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "external", "allow_overdraft": True})

    # then
    assert response.status_code == 201
    assert response.json()["balances"] == {"posted": 0, "held": 0, "available": None}


@pytest.mark.parametrize("account_type", ["reserve", "settlement", "payout", "fees"])
def test_system_account_types_cannot_be_created_through_the_api(tenant_a, account_type):
    # given
    accounts_before = Account.objects.filter(tenant=tenant_a.tenant).count()
    events_before = Event.objects.filter(tenant=tenant_a.tenant).count()

    # when
    response = tenant_a.post("/v1/accounts", {"currency": "EUR", "account_type": account_type})

    # then
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert [error["field"] for error in body["errors"]] == ["account_type"]
    assert Account.objects.filter(tenant=tenant_a.tenant).count() == accounts_before
    assert Event.objects.filter(tenant=tenant_a.tenant).count() == events_before


def test_is_system_cannot_be_set_by_the_client(tenant_a):
    # when
    response = tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "operating", "is_system": True})

    # then
    assert response.status_code == 201
    assert response.json()["is_system"] is False
    assert Account.objects.get(pk=response.json()["id"]).is_system is False


# --- list -----------------------------------------------------------------------------------

@pytest.fixture
def assorted(tenant_a, make_account):
    """Accounts of A across every filter; returns {label: id}."""
    made = {
        "usd_customer_c1": make_account(customer="c1", currency="USD", account_type="customer"),
        "eur_customer_c1": make_account(customer="c1", currency="EUR", account_type="customer"),
        "usd_merchant_c2": make_account(customer="c2", currency="USD", account_type="merchant"),
        "usd_operating_c2": make_account(customer="c2", currency="USD", account_type="operating"),
    }
    ids_ = {label: account["id"] for label, account in made.items()}
    assert tenant_a.post(f"/v1/accounts/{ids_['usd_merchant_c2']}/freeze").status_code == 200
    assert tenant_a.post(f"/v1/accounts/{ids_['usd_operating_c2']}/close").status_code == 200
    return ids_


@pytest.mark.parametrize("params,expected", [
    ({"customer": "c1"}, ["eur_customer_c1", "usd_customer_c1"]),
    ({"customer": "c2"}, ["usd_operating_c2", "usd_merchant_c2"]),
    ({"customer": "nobody"}, []),
    ({"currency": "EUR"}, ["eur_customer_c1"]),
    ({"account_type": "merchant"}, ["usd_merchant_c2"]),
    ({"account_type": "customer", "currency": "USD"}, ["usd_customer_c1"]),
    ({"status": "frozen"}, ["usd_merchant_c2"]),
    ({"status": "closed"}, ["usd_operating_c2"]),
    ({"status": "active", "customer": "c1"}, ["eur_customer_c1", "usd_customer_c1"]),
])
def test_list_filters(tenant_a, assorted, params, expected):
    # when
    response = tenant_a.get("/v1/accounts", **params)

    # then: exactly the tenant's rows that match (system accounts included), newest first
    rows = response.json()["data"]
    assert [row["id"] for row in rows if not row["is_system"]] == [assorted[label] for label in expected]
    assert ids(response) == list(Account.objects.filter(tenant=tenant_a.tenant, **params)
                                 .order_by("-id").values_list("id", flat=True))
    assert all(row[name] == value for row in rows for name, value in params.items())


def test_list_includes_system_accounts_of_the_tenant(tenant_a):
    # when
    response = tenant_a.get("/v1/accounts", currency="USD")

    # then
    types = sorted(row["account_type"] for row in response.json()["data"] if row["is_system"])
    assert types == ["fees", "payout", "reserve", "settlement"]


@pytest.mark.parametrize("param,value", [
    ("currency", "usd"), ("currency", "XXX"), ("currency", ""), ("account_type", "savings"),
    ("account_type", "Customer"), ("status", "open"), ("status", "ACTIVE"),
])
def test_list_with_an_unknown_filter_value_is_400(tenant_a, param, value):
    # when
    response = tenant_a.get("/v1/accounts", **{param: value})

    # then
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["status"]) == ("validation_error", 400)
    assert [error["field"] for error in body["errors"]] == [param]


# --- pagination -----------------------------------------------------------------------------

@pytest.fixture
def five(make_account):
    """Five accounts of one customer, oldest first."""
    return [make_account(customer="paged")["id"] for _ in range(5)]


def test_list_is_newest_first_with_the_envelope(tenant_a, five):
    # when
    response = tenant_a.get("/v1/accounts", customer="paged")

    # then
    body = response.json()
    assert set(body) == {"object", "data", "has_more"}
    assert (body["object"], body["has_more"]) == ("list", False)
    assert ids(response) == list(reversed(five))
    assert all(set(row) == ACCOUNT_FIELDS for row in body["data"])


def test_pages_with_limit_and_starting_after(tenant_a, five):
    # when
    first = tenant_a.get("/v1/accounts", customer="paged", limit=2)
    second = tenant_a.get("/v1/accounts", customer="paged", limit=2, starting_after=ids(first)[-1])
    third = tenant_a.get("/v1/accounts", customer="paged", limit=2, starting_after=ids(second)[-1])

    # then
    newest_first = list(reversed(five))
    assert (ids(first), first.json()["has_more"]) == (newest_first[0:2], True)
    assert (ids(second), second.json()["has_more"]) == (newest_first[2:4], True)
    assert (ids(third), third.json()["has_more"]) == (newest_first[4:], False)


def test_exactly_full_page_has_no_more(tenant_a, five):
    # when
    response = tenant_a.get("/v1/accounts", customer="paged", limit=5)

    # then
    assert len(ids(response)) == 5
    assert response.json()["has_more"] is False


@pytest.mark.parametrize("limit,count", [("1", 1), ("100", 5)])
def test_limit_bounds_are_accepted(tenant_a, five, limit, count):
    # when
    response = tenant_a.get("/v1/accounts", customer="paged", limit=limit)

    # then
    assert len(ids(response)) == count


def test_default_limit_is_25(tenant_a, make_account):
    # given
    for _ in range(26):
        make_account(customer="many")

    # when
    response = tenant_a.get("/v1/accounts", customer="many")

    # then
    assert len(ids(response)) == 25
    assert response.json()["has_more"] is True


@pytest.mark.parametrize("limit", ["", "0", "101", "x", "-1", "1.5", " 5", "1e1", "\u00b2", "\u0661"])
@pytest.mark.parametrize("path", ["/v1/accounts", "/v1/events"])
def test_limit_out_of_range_or_not_an_integer_is_400(tenant_a, limit, path):
    # when
    response = tenant_a.get(path, limit=limit)

    # then
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"] == [{"field": "limit", "message": "Must be an integer from 1 to 100."}]


def test_unknown_cursor_is_404_like_any_unknown_id(tenant_a, five):
    # when
    response = tenant_a.get("/v1/accounts", customer="paged", starting_after="acct_00000000000000000000000000")

    # then
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert response.json()["errors"] == [{"field": "starting_after", "message": "No such object."}]


def test_cursor_stays_valid_when_its_object_leaves_the_filter(tenant_a, make_account):
    # given: a client pages through frozen accounts; the last one it saw is unfrozen meanwhile
    frozen = [make_account(customer="f")["id"] for _ in range(3)]
    for account_id in frozen:
        assert tenant_a.post(f"/v1/accounts/{account_id}/freeze").status_code == 200
    first = tenant_a.get("/v1/accounts", status="frozen", limit=1)
    assert ids(first) == [frozen[2]]
    assert tenant_a.post(f"/v1/accounts/{frozen[2]}/unfreeze").status_code == 200

    # when
    second = tenant_a.get("/v1/accounts", status="frozen", limit=1, starting_after=frozen[2])

    # then: the cursor is a position, not a member of the filtered set
    assert ids(second) == [frozen[1]]
    assert second.json()["has_more"] is True


# --- retrieve and balance -------------------------------------------------------------------

def test_retrieve(tenant_a, make_account):
    # given
    created = make_account(customer="cus_r", metadata={"k": "v"})

    # when
    response = tenant_a.get(f"/v1/accounts/{created['id']}")

    # then
    assert response.status_code == 200
    assert response.json() == created


def test_balance_shape(tenant_a, make_account):
    # given
    account = make_account(currency="EUR")

    # when
    response = tenant_a.get(f"/v1/accounts/{account['id']}/balance")

    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"account", "currency", "posted", "held", "available", "as_of"}
    assert (body["account"], body["currency"], body["posted"], body["held"], body["available"]) == (
        account["id"], "EUR", 0, 0, 0)
    assert abs(parse_time(body["as_of"]) - timezone.now()) < timedelta(seconds=30)


# --- transitions ----------------------------------------------------------------------------

@pytest.mark.parametrize("steps", [
    [("freeze", "frozen", "account.frozen"), ("unfreeze", "active", "account.unfrozen"),
     ("close", "closed", "account.closed")],
    [("freeze", "frozen", "account.frozen"), ("close", "closed", "account.closed")],
])
def test_transitions_emit_their_event_and_history_with_actor_and_reason(tenant_a, make_account, steps):
    # given
    account = make_account()
    actor = f"api_key:{write_key(tenant_a).id}"

    for action, status, event_type in steps:
        reason = f"{action} because ticket 7"
        events_before = Event.objects.filter(resource_id=account["id"]).count()

        # when
        response = tenant_a.post(f"/v1/accounts/{account['id']}/{action}", {"reason": reason})

        # then
        assert response.status_code == 200, response.content
        assert response.json()["status"] == status
        assert Account.objects.get(pk=account["id"]).status == status
        assert Event.objects.filter(resource_id=account["id"]).count() == events_before + 1
        event = Event.objects.filter(resource_id=account["id"]).order_by("-id").first()
        assert (event.type, event.actor, event.request_id) == (event_type, actor, response["X-Request-Id"])
        assert event.data["object"]["status"] == status
        history = Account.history.filter(id=account["id"]).order_by("-history_id").first()
        assert (history.status, history.history_type, history.history_actor, history.history_change_reason) == (
            status, "~", actor, reason)


def test_transition_without_a_reason_records_the_action(tenant_a, make_account):
    # given
    account = make_account()

    # when
    response = tenant_a.post(f"/v1/accounts/{account['id']}/freeze")

    # then
    assert response.status_code == 200
    history = Account.history.filter(id=account["id"]).order_by("-history_id").first()
    assert (history.history_change_reason, history.status) == ("freeze", "frozen")


def test_creation_history_names_the_api_key(tenant_a, make_account):
    # when
    account = make_account()

    # then
    history = Account.history.get(id=account["id"])
    assert (history.history_type, history.history_actor) == ("+", f"api_key:{write_key(tenant_a).id}")


# --- request ids ----------------------------------------------------------------------------

@pytest.mark.parametrize("client_id", ["abc", "A-b_9", "x" * 64])
def test_valid_client_request_id_is_kept_beside_the_servers(tenant_a, client_id):
    # when
    response = tenant_a.client.get("/v1/accounts", HTTP_X_REQUEST_ID=client_id)

    # then: the server's id stays the evidence key; the client's is echoed and kept with it
    assert GENERATED_REQUEST_ID.match(response["X-Request-Id"]), response["X-Request-Id"]
    assert response["X-Client-Request-Id"] == client_id
    record = RequestRecord.objects.get(request_id=response["X-Request-Id"])
    assert (record.path, record.client_request_id) == ("/v1/accounts", client_id)
    assert not RequestRecord.objects.filter(request_id=client_id).exists()


@pytest.mark.parametrize("client_id", ["x" * 65, "has space", "dots.not.allowed", "semi;colon", "ünï", ""])
def test_invalid_client_request_id_is_ignored(tenant_a, client_id):
    # when
    response = tenant_a.client.get("/v1/accounts", HTTP_X_REQUEST_ID=client_id)

    # then: not an error, and nothing of it kept or echoed
    assert response.status_code == 200
    assert GENERATED_REQUEST_ID.match(response["X-Request-Id"]), response["X-Request-Id"]
    assert "X-Client-Request-Id" not in response
    assert RequestRecord.objects.get(request_id=response["X-Request-Id"]).client_request_id == ""
    assert not RequestRecord.objects.filter(request_id=client_id).exists()


def test_two_tenants_sending_the_same_request_id_get_evidence_of_their_own(tenant_a, tenant_b):
    # given: the finding: one client id became the evidence key of three requests of two tenants
    shared = "order-42"

    # when
    first = tenant_a.client.get("/v1/accounts", HTTP_X_REQUEST_ID=shared)
    second = tenant_b.client.get("/v1/accounts", HTTP_X_REQUEST_ID=shared)
    third = tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "customer", "customer": "c"},
                          HTTP_X_REQUEST_ID=shared)

    # then
    server_ids = {first["X-Request-Id"], second["X-Request-Id"], third["X-Request-Id"]}
    assert len(server_ids) == 3
    records = RequestRecord.objects.filter(client_request_id=shared)
    assert {record.request_id for record in records} == server_ids
    assert {record.tenant_id for record in records} == {tenant_a.tenant.id, tenant_b.tenant.id}
    assert Event.objects.filter(tenant=tenant_a.tenant, request_id=third["X-Request-Id"]).exists()
    assert not Event.objects.filter(request_id=shared).exists()


def test_generated_request_ids_differ(tenant_a):
    # when
    first = tenant_a.get("/v1/accounts")
    second = tenant_a.get("/v1/accounts")

    # then
    assert first["X-Request-Id"] != second["X-Request-Id"]


@pytest.mark.parametrize("request_", [
    pytest.param(lambda ctx, bare: ctx.post("/v1/accounts", {"currency": "USD", "account_type": "fees"}), id="201"),
    pytest.param(lambda ctx, bare: ctx.get("/v1/accounts"), id="200"),
    pytest.param(lambda ctx, bare: ctx.post("/v1/accounts", {"currency": "nope", "account_type": "fees"}), id="400"),
    pytest.param(lambda ctx, bare: bare.get("/v1/accounts"), id="401"),
    pytest.param(lambda ctx, bare: ctx.get("/v1/accounts/acct_missing"), id="404"),
    pytest.param(lambda ctx, bare: bare.get("/v1/no/such/path"), id="unknown-path"),
    pytest.param(lambda ctx, bare: ctx.client.delete("/v1/accounts"), id="405"),
    pytest.param(lambda ctx, bare: bare.get("/healthz"), id="healthz"),
    pytest.param(lambda ctx, bare: bare.get("/v1/openapi.json"), id="openapi"),
])
def test_every_response_carries_a_request_id(tenant_a, request_):
    # given
    bare = api_client("unused")
    bare.credentials()

    # when
    response = request_(tenant_a, bare)

    # then
    assert GENERATED_REQUEST_ID.match(response["X-Request-Id"])
    if response["Content-Type"] == "application/problem+json":
        assert response.json()["request_id"] == response["X-Request-Id"]


# --- evidence of calls ----------------------------------------------------------------------

def test_request_records_for_api_calls(tenant_a):
    # given
    bare = api_client("unused")
    bare.credentials()

    # when
    created = tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "operating"}, key="recorded")
    listed = tenant_a.get("/v1/accounts", limit=3)
    refused = bare.get("/v1/accounts")

    # then
    actor = f"api_key:{write_key(tenant_a).id}"
    rows = {r.request_id: r for r in RequestRecord.objects.filter(
        request_id__in=[created["X-Request-Id"], listed["X-Request-Id"], refused["X-Request-Id"]])}
    assert len(rows) == 3
    write = rows[created["X-Request-Id"]]
    assert (write.tenant_id, write.actor, write.method, write.path, write.status, write.idempotency_key,
            write.idempotent_replay) == (tenant_a.tenant.id, actor, "POST", "/v1/accounts", 201, "recorded", False)
    assert 0 <= write.duration_ms < 30_000
    read = rows[listed["X-Request-Id"]]
    assert (read.tenant_id, read.actor, read.method, read.status, read.idempotency_key) == (
        tenant_a.tenant.id, actor, "GET", 200, "")
    unauthenticated = rows[refused["X-Request-Id"]]
    assert (unauthenticated.tenant_id, unauthenticated.actor, unauthenticated.method, unauthenticated.status) == (
        "", "", "GET", 401)


def test_request_record_survives_a_failed_request(tenant_a, monkeypatch):
    # given: evidence is written on its own connection, so the failure cannot roll it back
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("ledger.api.views.account_create", broken)

    # when
    response = tenant_a.post("/v1/accounts", {"currency": "USD", "account_type": "fees"})

    # then
    assert response.status_code == 500
    assert RequestRecord.objects.get(request_id=response["X-Request-Id"]).status == 500


def test_last_used_at_is_set_when_a_key_is_used(tenant_a):
    # given
    api_key, raw = api_key_create(tenant=tenant_a.tenant, name="fresh", scope=ApiKey.SCOPE_READ, actor=SYSTEM)
    assert api_key.last_used_at is None
    history_before = api_key.history.count()

    # when
    response = api_client(raw).get("/v1/accounts")

    # then
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert abs(api_key.last_used_at - timezone.now()) < timedelta(seconds=30)
    assert api_key.history.count() == history_before
    assert ApiKey.objects.get(tenant=tenant_a.tenant, name="bootstrap").last_used_at is None


# --- events ---------------------------------------------------------------------------------

def test_events_list_filters_by_exact_type_and_by_family(tenant_a, make_account):
    # given
    account = make_account()
    tenant_a.post(f"/v1/accounts/{account['id']}/freeze")
    tenant_a.post(f"/v1/accounts/{account['id']}/unfreeze")
    everything = set(Event.objects.filter(tenant=tenant_a.tenant).values_list("id", flat=True))
    frozen = Event.objects.get(resource_id=account["id"], type="account.frozen").id

    # when
    exact = tenant_a.get("/v1/events", type="account.frozen")
    family = tenant_a.get("/v1/events", type="account.*", limit=100)
    other_family = tenant_a.get("/v1/events", type="hold.*")
    prefix_is_not_a_family = tenant_a.get("/v1/events", type="account")
    by_resource = tenant_a.get("/v1/events", resource=account["id"])

    # then
    assert ids(exact) == [frozen]
    assert set(ids(family)) == everything
    assert ids(other_family) == []
    assert ids(prefix_is_not_a_family) == []
    assert [row["type"] for row in by_resource.json()["data"]] == [
        "account.unfrozen", "account.frozen", "account.created"]


def test_event_retrieve_shape(tenant_a, make_account):
    # given
    account = make_account()
    event = Event.objects.get(resource_id=account["id"])

    # when
    response = tenant_a.get(f"/v1/events/{event.id}")

    # then
    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("id", "object", "type", "data")} == {
        "id": event.id, "object": "event", "type": "account.created", "data": {"object": account}}
    assert abs(parse_time(body["created_at"]) - timezone.now()) < timedelta(seconds=30)


def test_events_paginate_newest_first(tenant_a, make_account):
    # given
    account = make_account()
    for action in ("freeze", "unfreeze", "freeze"):
        tenant_a.post(f"/v1/accounts/{account['id']}/{action}")

    # when
    first = tenant_a.get("/v1/events", resource=account["id"], limit=3)
    rest = tenant_a.get("/v1/events", resource=account["id"], limit=3, starting_after=ids(first)[-1])

    # then
    assert [row["type"] for row in first.json()["data"]] == ["account.frozen", "account.unfrozen", "account.frozen"]
    assert first.json()["has_more"] is True
    assert [row["type"] for row in rest.json()["data"]] == ["account.created"]
    assert rest.json()["has_more"] is False
