"""Tenant isolation at the API edge.

Tenant B's key on tenant A's object answers exactly what a missing id answers (404
`not_found`), changes nothing, and leaves an AccessDenial naming both tenants. A missing id
answers the same 404 and leaves no denial: only an attempt on a real foreign object is evidence.
"""

import pytest

from audit.models import AccessDenial
from ledger.models import Account, LedgerTransaction
from tenants.models import ApiKey
from webhooks.models import Event

pytestmark = pytest.mark.django_db

MISSING = {"account": "acct_00000000000000000000000000", "event": "evt_00000000000000000000000000",
           "transaction": "txn_00000000000000000000000000"}
MISSING_ACCOUNT, MISSING_EVENT = MISSING["account"], MISSING["event"]

# (method, path template, kind of object the id names)
ENDPOINTS = [
    pytest.param(("GET", "/v1/accounts/{id}", "account"), id="account-retrieve"),
    pytest.param(("GET", "/v1/accounts/{id}/balance", "account"), id="account-balance"),
    pytest.param(("POST", "/v1/accounts/{id}/freeze", "account"), id="account-freeze"),
    pytest.param(("POST", "/v1/accounts/{id}/unfreeze", "account"), id="account-unfreeze"),
    pytest.param(("POST", "/v1/accounts/{id}/close", "account"), id="account-close"),
    pytest.param(("GET", "/v1/events/{id}", "event"), id="event-retrieve"),
    # The ledger's endpoints pass the same edge.
    pytest.param(("GET", "/v1/accounts/{id}/entries", "account"), id="account-entries"),
    pytest.param(("GET", "/v1/transactions?account={id}", "account"), id="transactions-by-account"),
    pytest.param(("GET", "/v1/transactions/{id}", "transaction"), id="transaction-retrieve"),
    pytest.param(("POST", "/v1/transactions/{id}/reverse", "transaction"), id="transaction-reverse"),
]


def call(ctx, method: str, path: str):
    if method == "GET":
        return ctx.client.get(path)
    # A real reason, so a leak would leave a visible change reason in the history as well.
    return ctx.post(path, {"reason": "cross-tenant attempt"})


def write_key_of(ctx) -> ApiKey:
    return ApiKey.objects.get(tenant=ctx.tenant, name="bootstrap")


def comparable(response, object_id: str) -> dict:
    """The parts of a 404 that must not differ between a foreign and a missing id."""
    body = response.json()
    assert body["request_id"] == response["X-Request-Id"]
    return {
        "status": response.status_code,
        "content_type": response["Content-Type"],
        "headers": sorted(name.lower() for name in response.headers),
        "body": {key: (value.replace(object_id, "<id>") if isinstance(value, str) else value)
                 for key, value in body.items() if key != "request_id"},
    }


@pytest.fixture
def a_object(tenant_a, make_account, path_kind_method):
    """An object of tenant A in a state where the endpoint under test *would* change it."""
    method, template, kind = path_kind_method
    account = make_account(customer="alpha_customer")
    if template.endswith("/unfreeze"):
        response = tenant_a.post(f"/v1/accounts/{account['id']}/freeze", {"reason": "setup"})
        assert response.status_code == 200, response.content
    if kind == "event":
        return Event.objects.get(resource_id=account["id"], type="account.created").id
    if kind == "transaction":
        return transfer_into(tenant_a, make_account, account["id"])
    return account["id"]


def transfer_into(ctx, make_account, account_id: str) -> str:
    """A posted transaction of the tenant: funds from an overdraft account into `account_id`."""
    source = make_account(ctx, account_type="external", allow_overdraft=True)
    response = ctx.post("/v1/transactions", {"description": "funding", "entries": [
        {"account": source["id"], "direction": "debit", "amount": 1000},
        {"account": account_id, "direction": "credit", "amount": 1000}]})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def owner_account_of(object_id: str, kind: str) -> str:
    if kind == "event":
        return Event.objects.get(pk=object_id).resource_id
    if kind == "transaction":
        return LedgerTransaction.objects.get(pk=object_id).entries.get(direction="credit").account_id
    return object_id


@pytest.fixture(params=ENDPOINTS)
def path_kind_method(request):
    return request.param


def test_foreign_object_answers_404_like_a_missing_one_and_leaves_a_denial(
        tenant_a, tenant_b, a_object, path_kind_method):
    # given
    method, template, kind = path_kind_method
    missing = MISSING[kind]
    account_id = owner_account_of(a_object, kind)
    before_status = Account.objects.get(pk=account_id).status
    before_history = Account.history.filter(id=account_id).count()
    before_events = set(Event.objects.filter(tenant=tenant_a.tenant).values_list("id", flat=True))
    before_transactions = set(LedgerTransaction.objects.filter(tenant=tenant_a.tenant).values_list("id", flat=True))
    denials_before = AccessDenial.objects.count()

    # when
    foreign = call(tenant_b, method, template.format(id=a_object))
    missing_response = call(tenant_b, method, template.format(id=missing))

    # then: the same answer, whether the id belongs to A or to nobody
    assert foreign.status_code == 404
    assert foreign["Content-Type"] == "application/problem+json"
    assert foreign.json()["code"] == "not_found"
    assert foreign.json()["detail"] == f"No such {kind}: {a_object}"
    assert comparable(foreign, a_object) == comparable(missing_response, missing)

    # then: exactly one denial, for the foreign id only, naming both tenants and the request
    assert AccessDenial.objects.count() == denials_before + 1
    denial = AccessDenial.objects.get(target=a_object)
    assert denial.actor == f"api_key:{write_key_of(tenant_b).id}"
    assert denial.tenant_id == tenant_b.tenant.id
    assert denial.target_tenant_id == tenant_a.tenant.id
    assert denial.role == ApiKey.SCOPE_WRITE
    assert denial.action == f"{method} {template.format(id=a_object).split('?')[0]}"
    assert denial.request_id == foreign["X-Request-Id"]
    assert not AccessDenial.objects.filter(target=missing).exists()

    # then: A's object is unchanged and A has no new events
    assert Account.objects.get(pk=account_id).status == before_status
    assert Account.history.filter(id=account_id).count() == before_history
    assert set(Event.objects.filter(tenant=tenant_a.tenant).values_list("id", flat=True)) == before_events
    assert set(LedgerTransaction.objects.filter(tenant=tenant_a.tenant).values_list("id", flat=True)) == (
        before_transactions)
    assert not LedgerTransaction.objects.filter(tenant=tenant_b.tenant).exists()
    assert not Event.objects.filter(tenant=tenant_b.tenant, resource_id=account_id).exists()


def test_own_object_is_served_to_its_tenant(tenant_a, a_object, path_kind_method):
    # given: the matrix above is only meaningful if the same call works for the owner
    method, template, kind = path_kind_method

    # when
    response = call(tenant_a, method, template.format(id=a_object))

    # then
    assert response.status_code == (201 if template.endswith("/reverse") else 200), response.content
    assert not AccessDenial.objects.filter(target=a_object).exists()


@pytest.mark.parametrize("method,template,missing", [
    ("GET", "/v1/accounts/{id}", MISSING_ACCOUNT),
    ("GET", "/v1/accounts/{id}/balance", MISSING_ACCOUNT),
    ("POST", "/v1/accounts/{id}/freeze", MISSING_ACCOUNT),
    ("POST", "/v1/accounts/{id}/unfreeze", MISSING_ACCOUNT),
    ("POST", "/v1/accounts/{id}/close", MISSING_ACCOUNT),
    ("GET", "/v1/events/{id}", MISSING_EVENT),
    ("GET", "/v1/accounts/{id}/entries", MISSING_ACCOUNT),
    ("GET", "/v1/transactions?account={id}", MISSING_ACCOUNT),
    ("GET", "/v1/transactions/{id}", MISSING["transaction"]),
    ("POST", "/v1/transactions/{id}/reverse", MISSING["transaction"]),
    ("GET", "/v1/accounts/{id}", "not-even-an-id"),
])
def test_missing_id_answers_404_and_writes_no_denial(tenant_b, method, template, missing):
    # given
    denials_before = AccessDenial.objects.count()

    # when
    response = call(tenant_b, method, template.format(id=missing))

    # then
    assert response.status_code == 404
    body = response.json()
    assert (body["code"], body["status"], body["request_id"]) == ("not_found", 404, response["X-Request-Id"])
    assert AccessDenial.objects.count() == denials_before


def test_lists_of_b_never_show_a_rows(tenant_a, tenant_b, make_account):
    # given: both tenants use the same customer reference
    a_account = make_account(customer="shared_ref")
    b_account = make_account(tenant_b, customer="shared_ref")
    a_events = set(Event.objects.filter(tenant=tenant_a.tenant).values_list("id", flat=True))
    b_accounts = set(Account.objects.filter(tenant=tenant_b.tenant).values_list("id", flat=True))
    b_events = set(Event.objects.filter(tenant=tenant_b.tenant).values_list("id", flat=True))

    # when
    accounts = tenant_b.get("/v1/accounts", limit=100)
    by_customer = tenant_b.get("/v1/accounts", customer="shared_ref")
    events = tenant_b.get("/v1/events", limit=100)
    account_events = tenant_b.get("/v1/events", type="account.*", limit=100)
    about_a = tenant_b.get("/v1/events", resource=a_account["id"])

    # then
    assert {row["id"] for row in accounts.json()["data"]} == b_accounts
    assert [row["id"] for row in by_customer.json()["data"]] == [b_account["id"]]
    assert {row["id"] for row in events.json()["data"]} == b_events
    assert {row["id"] for row in account_events.json()["data"]} == b_events
    assert about_a.json()["data"] == []
    assert not a_events & {row["id"] for row in events.json()["data"]}


@pytest.mark.parametrize("path", ["/v1/accounts", "/v1/events"])
def test_cursor_of_another_tenant_is_refused(tenant_a, tenant_b, make_account, path):
    # given: an id of A that B can page from only if isolation leaks
    a_account = make_account()
    cursor = a_account["id"] if path == "/v1/accounts" else (
        Event.objects.get(resource_id=a_account["id"]).id)
    make_account(tenant_b)

    missing = MISSING_ACCOUNT if path == "/v1/accounts" else MISSING_EVENT

    # when
    response = tenant_b.get(path, starting_after=cursor)
    unknown = tenant_b.get(path, starting_after=missing)

    # then: refused exactly like an id that does not exist
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert body["errors"] == [{"field": "starting_after", "message": "No such object."}]
    assert comparable(response, cursor) == comparable(unknown, missing)
