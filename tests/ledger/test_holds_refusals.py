"""Every refused hold request answers the docs/api.md problem and writes nothing: no hold, no hold
history, no transaction, no entry, no event, and no balance moves.

Families of bad values are checked in one test each (every value its own request, with the
whole ledger compared before and after it), so the file stays fast; a failure names the value.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.actors import Actor
from audit.models import AccessDenial
from ledger.models import Account, Hold
from ledger.selectors import posted_balance
from ledger.services.accounts import account_create
from ledger.services.holds import hold_place, hold_release

from .checks import customer_account, external_account, ledger_snapshot, transfer

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
MISSING = object()


def funded_customer(tenant, amount: int, **fields) -> Account:
    account = customer_account(tenant, **fields)
    transfer(tenant, external_account(tenant), account, amount)
    return account


def hold_of(tenant, account: Account, amount: int) -> str:
    return hold_place(tenant=tenant, account_id=account.id, amount=amount,
                      expires_at=timezone.now() + timedelta(hours=1), actor=SYSTEM).id


@pytest.fixture
def book(tenant_a):
    """Tenant A: a customer holding 5,000 of which 1,000 is held, a merchant, a EUR account and a
    released hold."""
    tenant = tenant_a.tenant

    class Book:
        customer = funded_customer(tenant, 5_000).id
        merchant = account_create(tenant=tenant, currency="USD", account_type="merchant", customer="mer_1",
                                  actor=SYSTEM).id
        eur = customer_account(tenant, currency="EUR").id
        bank = Account.objects.get(tenant=tenant, account_type="external").id

    Book.released = hold_of(tenant, Account.objects.get(pk=Book.customer), 500)
    hold_release(tenant=tenant, hold_id=Book.released, actor=SYSTEM, reason="setup")
    Book.hold = hold_of(tenant, Account.objects.get(pk=Book.customer), 1_000)
    return Book


@pytest.fixture
def foreign(tenant_b):
    """Tenant B: a funded customer with an active hold of its own."""

    class Foreign:
        customer = funded_customer(tenant_b.tenant, 3_000)

    Foreign.hold = hold_of(tenant_b.tenant, Foreign.customer, 700)
    Foreign.customer = Foreign.customer.id
    return Foreign


def snapshot(ctx=None, accounts=()) -> dict:
    """The ledger snapshot, every hold's state, the hold history, and the balances the API shows."""
    state = {
        **ledger_snapshot(),
        "holds": sorted(Hold.objects.values_list("id", "status", "captured_amount", "released_amount",
                                                 "resolved_by", "resolution_reason")),
        "hold_history": Hold.history.count(),
    }
    if ctx is not None:
        for account in accounts:
            body = ctx.get(f"/v1/accounts/{account}/balance").json()
            state[account] = (body["posted"], body["held"], body["available"])
    return state


def assert_problem(response, status: int, code: str, fields: set[str] | None = None, *, case=None) -> dict:
    where = f"case {case!r}: " if case is not None else ""
    assert response.status_code == status, f"{where}{response.status_code} {response.content!r}"
    assert response["Content-Type"].startswith("application/problem+json"), where
    body = response.json()
    assert (body["status"], body["code"]) == (status, code), f"{where}{body}"
    assert body["type"] == f"https://zentra.dev/problems/{code}", where
    assert body["title"] and body["detail"], where
    assert body["request_id"] == response["X-Request-Id"], where
    if fields is not None:
        got = {error["field"] for error in body.get("errors", [])}
        assert fields <= got, f"{where}expected field errors {fields}, got {body.get('errors')}"
    return body


def assert_each_refused(ctx, book, cases, request, status: int, code: str, fields: set[str] | None):
    """For each case: one request, the problem, and the whole ledger (and balances) unchanged."""
    for case in cases:
        before = snapshot(ctx, [book.customer, book.merchant])
        response = request(case)
        assert_problem(response, status, code, fields, case=case)
        assert snapshot(ctx, [book.customer, book.merchant]) == before, f"case {case!r} wrote something"


def without_missing(body: dict) -> dict:
    return {k: v for k, v in body.items() if v is not MISSING}


# --- bad amounts and expiries -----------------------------------------------------------------------


BAD_AMOUNTS = [0, -5, 1.5, 1.0, "100", True, False, 2**63, 10**30, None, [100], {"value": 100}, MISSING]


def test_holds_with_a_bad_amount_are_400_and_write_nothing(tenant_a, book):
    assert_each_refused(
        tenant_a, book, BAD_AMOUNTS,
        lambda amount: tenant_a.post("/v1/holds", without_missing(
            {"account": book.customer, "amount": amount, "expires_in": 60})),
        400, "validation_error", {"amount"})


def test_the_largest_amount_is_valid_input_and_refused_only_for_funds(tenant_a, book):
    # 2^63-1 passes validation (docs/api.md's bound is inclusive) and then meets the balance
    before = snapshot(tenant_a, [book.customer])
    response = tenant_a.post("/v1/holds", {"account": book.customer, "amount": 2**63 - 1, "expires_in": 60})
    assert_problem(response, 422, "insufficient_funds")
    assert snapshot(tenant_a, [book.customer]) == before


BAD_EXPIRES_IN = [0, -5, "60", 1.5, 60.0, True, None, 30 * 24 * 3600 + 1]


def test_holds_with_a_bad_expires_in_are_400_and_write_nothing(tenant_a, book):
    # the last case is one second over the default maximum of 30 days
    assert_each_refused(
        tenant_a, book, BAD_EXPIRES_IN,
        lambda expires_in: tenant_a.post("/v1/holds", {"account": book.customer, "amount": 100,
                                                        "expires_in": expires_in}),
        400, "validation_error", {"expires_in"})


def test_expires_in_over_a_configured_maximum_is_400(tenant_a, book, settings):
    # given
    settings.ZENTRA_HOLD_MAX_SECONDS = 120
    # when / then: over it, by expires_in or by expires_at
    assert_each_refused(
        tenant_a, book, [121, 3600],
        lambda seconds: tenant_a.post("/v1/holds", {"account": book.customer, "amount": 100, "expires_in": seconds}),
        400, "validation_error", {"expires_in"})
    assert_each_refused(
        tenant_a, book, [180],
        lambda seconds: tenant_a.post("/v1/holds", {"account": book.customer, "amount": 100, "expires_at": (
            timezone.now() + timedelta(seconds=seconds)).isoformat()}),
        400, "validation_error", {"expires_at"})
    # and the maximum itself is allowed
    at_max = tenant_a.post("/v1/holds", {"account": book.customer, "amount": 100, "expires_in": 120})
    assert at_max.status_code == 201, at_max.json()


def test_holds_need_exactly_one_of_expires_in_and_expires_at(tenant_a, book):
    later = (timezone.now() + timedelta(minutes=5)).isoformat()
    assert_each_refused(
        tenant_a, book, ["neither", "both"],
        lambda case: tenant_a.post("/v1/holds", {
            "account": book.customer, "amount": 100,
            **({"expires_in": 60, "expires_at": later} if case == "both" else {})}),
        400, "validation_error", None)
    for case in ("neither", "both"):
        body = tenant_a.post("/v1/holds", {"account": book.customer, "amount": 100,
                                           **({"expires_in": 60, "expires_at": later} if case == "both" else {})}
                             ).json()
        assert {e["field"] for e in body["errors"]} & {"expires_in", "expires_at"}, body


def test_holds_with_a_bad_expires_at_are_400_and_write_nothing(tenant_a, book):
    def request(case):
        value = {"an hour ago": (timezone.now() - timedelta(hours=1)).isoformat(),
                 "just now": (timezone.now() - timedelta(milliseconds=1)).isoformat()}.get(case, case)
        return tenant_a.post("/v1/holds", {"account": book.customer, "amount": 100, "expires_at": value})

    assert_each_refused(tenant_a, book, ["an hour ago", "just now", "not a date", 1893456000, None, True],
                        request, 400, "validation_error", {"expires_at"})


# --- funds and ownership ------------------------------------------------------------------------


def test_hold_over_the_available_balance_is_422_insufficient_funds(tenant_a, book):
    # given: 5,000 funded, 1,000 held: 4,000 available
    before = snapshot(tenant_a, [book.customer])
    # when
    response = tenant_a.post("/v1/holds", {"account": book.customer, "amount": 4_001, "expires_in": 60})
    # then
    body = assert_problem(response, 422, "insufficient_funds")
    assert "4000" in body["detail"] and "4001" in body["detail"], body["detail"]
    assert snapshot(tenant_a, [book.customer]) == before
    # and exactly the available amount may be held
    exact = tenant_a.post("/v1/holds", {"account": book.customer, "amount": 4_000, "expires_in": 60})
    assert exact.status_code == 201, exact.json()
    balance = tenant_a.get(f"/v1/accounts/{book.customer}/balance").json()
    assert (balance["posted"], balance["held"], balance["available"]) == (0, 5_000, 0)


def test_hold_on_an_account_of_another_tenant_is_404_with_an_access_denial(tenant_a, book, foreign):
    # given
    before = snapshot()
    # when
    response = tenant_a.post("/v1/holds", {"account": foreign.customer, "amount": 100, "expires_in": 60})
    missing = tenant_a.post("/v1/holds", {"account": "acct_missing", "amount": 100, "expires_in": 60})
    # then: exactly like a missing account, but with evidence
    body = assert_problem(response, 404, "not_found")
    assert_problem(missing, 404, "not_found")
    assert body["detail"].replace(foreign.customer, "X") == missing.json()["detail"].replace("acct_missing", "X")
    denial = AccessDenial.objects.get(target=foreign.customer)
    assert denial.tenant_id == tenant_a.tenant.id
    assert denial.target_tenant_id == Account.objects.get(pk=foreign.customer).tenant_id != tenant_a.tenant.id
    assert denial.request_id == body["request_id"]
    assert denial.actor.startswith("api_key:")
    assert not AccessDenial.objects.filter(target="acct_missing").exists()
    assert snapshot() == before


def test_capture_to_an_account_in_another_currency_is_422_currency_mismatch(tenant_a, book):
    assert_each_refused(
        tenant_a, book, [None, 500],
        lambda amount: tenant_a.post(f"/v1/holds/{book.hold}/capture", without_missing({
            "destination_account": book.eur, "amount": MISSING if amount is None else amount})),
        422, "currency_mismatch", {"destination_account"})


def test_capture_to_an_account_of_another_tenant_is_404_with_an_access_denial(tenant_a, book, foreign):
    # given
    before = snapshot(tenant_a, [book.customer])
    # when
    response = tenant_a.post(f"/v1/holds/{book.hold}/capture", {"destination_account": foreign.customer})
    missing = tenant_a.post(f"/v1/holds/{book.hold}/capture", {"destination_account": "acct_nope"})
    # then
    body = assert_problem(response, 404, "not_found")
    assert_problem(missing, 404, "not_found")
    denial = AccessDenial.objects.get(target=foreign.customer)
    assert (denial.tenant_id, denial.request_id) == (tenant_a.tenant.id, body["request_id"])
    assert snapshot(tenant_a, [book.customer]) == before
    assert Account.objects.get(pk=foreign.customer).posted_balance == 3_000 - 700


def test_capture_of_more_than_remains_is_422_amount_exceeds_hold(tenant_a, book):
    # given: 1,000 held, 400 captured
    partial = tenant_a.post(f"/v1/holds/{book.hold}/capture", {"destination_account": book.merchant,
                                                                "amount": 400, "final": False})
    assert partial.status_code == 200, partial.json()
    # when / then
    assert_each_refused(
        tenant_a, book, [601, 1_000, 2**63 - 1],
        lambda amount: tenant_a.post(f"/v1/holds/{book.hold}/capture", {"destination_account": book.merchant,
                                                                         "amount": amount}),
        422, "amount_exceeds_hold", {"amount"})
    exact = tenant_a.post(f"/v1/holds/{book.hold}/capture", {"destination_account": book.merchant, "amount": 600})
    assert exact.status_code == 200 and exact.json()["status"] == "captured"


def test_captures_with_bad_fields_are_400_and_write_nothing(tenant_a, book):
    cases = [("amount", value) for value in BAD_AMOUNTS if value is not MISSING and value is not None] + [
        ("final", "true"), ("final", 1), ("final", None), ("destination_account", MISSING),
        ("destination_account", 42), ("destination_account", None), ("reason", 7)]

    def request(case):
        field, value = case
        body = without_missing({"destination_account": book.merchant, field: value})
        return tenant_a.post(f"/v1/holds/{book.hold}/capture", body)

    for case in cases:
        before = snapshot(tenant_a, [book.customer, book.merchant])
        assert_problem(request(case), 400, "validation_error", {case[0]}, case=case)
        assert snapshot(tenant_a, [book.customer, book.merchant]) == before, f"case {case!r} wrote something"


def test_resolving_a_released_hold_is_409_hold_not_active(tenant_a, book):
    assert_each_refused(
        tenant_a, book, ["capture", "release"],
        lambda action: tenant_a.post(f"/v1/holds/{book.released}/{action}",
                                     {"destination_account": book.merchant} if action == "capture"
                                     else {"reason": "x"}),
        409, "hold_not_active", None)


def test_resolving_a_captured_hold_is_409_hold_not_active(tenant_a, book):
    captured = tenant_a.post(f"/v1/holds/{book.hold}/capture", {"destination_account": book.merchant})
    assert captured.status_code == 200, captured.json()
    assert_each_refused(
        tenant_a, book, ["capture", "release"],
        lambda action: tenant_a.post(f"/v1/holds/{book.hold}/{action}",
                                     {"destination_account": book.merchant, "amount": 1} if action == "capture"
                                     else {}),
        409, "hold_not_active", None)


def test_a_hold_of_another_tenant_is_404_with_an_access_denial(tenant_a, book, foreign):
    requests = {
        "retrieve": lambda: tenant_a.get(f"/v1/holds/{foreign.hold}"),
        "capture": lambda: tenant_a.post(f"/v1/holds/{foreign.hold}/capture", {"destination_account": book.merchant}),
        "release": lambda: tenant_a.post(f"/v1/holds/{foreign.hold}/release", {"reason": "not mine"}),
    }
    for action, send in requests.items():
        # given
        before = snapshot(tenant_a, [book.customer, book.merchant])
        denials = AccessDenial.objects.filter(target=foreign.hold).count()
        # when
        response = send()
        # then
        body = assert_problem(response, 404, "not_found", case=action)
        denial = AccessDenial.objects.filter(target=foreign.hold).order_by("-id").first()
        assert AccessDenial.objects.filter(target=foreign.hold).count() == denials + 1, action
        assert denial.tenant_id == tenant_a.tenant.id
        assert denial.target_tenant_id == Hold.objects.get(pk=foreign.hold).tenant_id
        assert denial.request_id == body["request_id"]
        assert snapshot(tenant_a, [book.customer, book.merchant]) == before, action
    hold = Hold.objects.get(pk=foreign.hold)
    assert (hold.status, hold.captured_amount, hold.released_amount) == ("active", 0, 0)
    assert ids_listed(tenant_a) == {book.hold, book.released}


def ids_listed(ctx) -> set[str]:
    return {h["id"] for h in ctx.get("/v1/holds").json()["data"]}


def test_a_debit_normal_or_frozen_account_cannot_be_held(tenant_a, book):
    before = snapshot()
    debit_normal = tenant_a.post("/v1/holds", {"account": book.bank, "amount": 100, "expires_in": 60})
    assert_problem(debit_normal, 400, "validation_error", {"account"})
    assert snapshot() == before
    assert tenant_a.post(f"/v1/accounts/{book.customer}/freeze", {"reason": "r"}).status_code == 200
    before = snapshot()
    frozen = tenant_a.post("/v1/holds", {"account": book.customer, "amount": 100, "expires_in": 60})
    assert_problem(frozen, 422, "account_not_active")
    assert snapshot() == before


def test_a_hold_on_the_tenants_reserve_account_is_refused_and_writes_nothing(tenant_a, book):
    # given: the reserve holds the 1,000 of the customer's active hold
    reserve = Account.objects.get(tenant=tenant_a.tenant, account_type="reserve", currency="USD")
    assert posted_balance(reserve) == 1_000
    before = snapshot(tenant_a, [book.customer, book.merchant, reserve.id])
    # when: a client holds the reserve itself (debit and credit would be the same account)
    response = tenant_a.post("/v1/holds", {"account": reserve.id, "amount": 1_000, "expires_in": 60})
    # then: refused as any by-hand use of a system account is (otherwise capturing that hold
    # would hand out funds reserved for other holds)
    assert response.status_code == 403 and response.json()["code"] == "system_account", response.json()
    assert response["Content-Type"].startswith("application/problem+json")
    assert snapshot(tenant_a, [book.customer, book.merchant, reserve.id]) == before


def test_capture_into_the_tenants_reserve_account_is_refused_and_writes_nothing(tenant_a, book):
    # given
    reserve = Account.objects.get(tenant=tenant_a.tenant, account_type="reserve", currency="USD")
    before = snapshot(tenant_a, [book.customer, book.merchant, reserve.id])
    # when: the captured funds would stay in the reserve while the hold counts them as captured
    response = tenant_a.post(f"/v1/holds/{book.hold}/capture", {"destination_account": reserve.id})
    # then
    assert response.status_code in (400, 422), response.json()
    assert response["Content-Type"].startswith("application/problem+json")
    assert snapshot(tenant_a, [book.customer, book.merchant, reserve.id]) == before


def test_closing_an_account_whose_hold_lapsed_is_refused(tenant_a, book, clock):
    # given: all of an account's funds held by a hold that has lapsed (active until the job runs)
    account = funded_customer(tenant_a.tenant, 800)
    lapsing = hold_place(tenant=tenant_a.tenant, account_id=account.id, amount=800,
                         expires_at=timezone.now() + timedelta(milliseconds=300), actor=SYSTEM)
    clock.past(lapsing.expires_at)
    balance = tenant_a.get(f"/v1/accounts/{account.id}/balance").json()
    assert (balance["posted"], balance["held"], balance["available"]) == (0, 0, 800)
    before = snapshot()
    # when
    response = tenant_a.post(f"/v1/accounts/{account.id}/close", {"reason": "customer left"})
    # then: docs/api.md: close needs a zero balance and no active hold; 800 is still the account's
    assert_problem(response, 422, "account_not_empty")
    assert Account.objects.get(pk=account.id).status == "active"
    assert snapshot() == before
