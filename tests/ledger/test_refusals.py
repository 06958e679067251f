"""Every refusal of the ledger API answers the problem docs/api.md names and writes nothing:
no transaction, no entry, no event, and no account balance moves."""

from __future__ import annotations

import pytest

from audit.models import AccessDenial

from .checks import ledger_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(tenant_a, make_account):
    """Tenant A with a USD bank account (debit-normal, overdraft), alice holding 1,200, an empty bob,
    and EUR accounts."""

    class Book:
        external = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
        alice = make_account(customer="alice")
        bob = make_account(customer="bob")
        eur_external = make_account(currency="EUR", account_type="external", normal_balance="debit",
                                    allow_overdraft=True)
        eur_customer = make_account(currency="EUR", customer="alice")

    book = Book()
    funded = tenant_a.post("/v1/transactions", transfer_body(book.external, book.alice, 1_200))
    assert funded.status_code == 201, funded.json()
    book.funding = funded.json()
    return book


def transfer_body(source, destination, amount, **extra) -> dict:
    return {"description": "test", "entries": [
        {"account": source["id"], "direction": "debit", "amount": amount},
        {"account": destination["id"], "direction": "credit", "amount": amount}], **extra}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["status"] == status, body
    assert body["type"] == f"https://zentra.dev/problems/{code}"
    assert body["request_id"] == response["X-Request-Id"]
    return body


def error_fields(body: dict) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}


# --- balance and currency ----------------------------------------------------------------------------------


def test_unbalanced_transaction_is_refused(tenant_a, book):
    # given
    before = ledger_snapshot()
    # when: debit 1,000, credit 999
    response = tenant_a.post("/v1/transactions", {"entries": [
        {"account": book.external["id"], "direction": "debit", "amount": 1_000},
        {"account": book.bob["id"], "direction": "credit", "amount": 999}]})
    # then
    body = assert_problem(response, 422, "unbalanced_transaction")
    assert "USD" in body["detail"]
    assert ledger_snapshot() == before


def test_all_debits_are_refused_as_unbalanced(tenant_a, book):
    # given
    before = ledger_snapshot()
    # when
    response = tenant_a.post("/v1/transactions", {"entries": [
        {"account": book.external["id"], "direction": "debit", "amount": 500},
        {"account": book.alice["id"], "direction": "debit", "amount": 500}]})
    # then
    assert_problem(response, 422, "unbalanced_transaction")
    assert ledger_snapshot() == before


def test_entry_currency_differing_from_its_account_is_refused(tenant_a, book):
    # given
    before = ledger_snapshot()
    # when: both accounts are USD; the first entry says EUR
    body = transfer_body(book.external, book.bob, 100)
    body["entries"][0]["currency"] = "EUR"
    response = tenant_a.post("/v1/transactions", body)
    # then
    problem = assert_problem(response, 422, "currency_mismatch")
    assert "entries[0].currency" in error_fields(problem)
    assert ledger_snapshot() == before


def test_entry_currency_equal_to_its_account_is_accepted(tenant_a, book):
    # given
    body = transfer_body(book.external, book.bob, 100)
    body["entries"][0]["currency"] = body["entries"][1]["currency"] = "USD"
    # when
    response = tenant_a.post("/v1/transactions", body)
    # then
    assert response.status_code == 201, response.json()


def test_usd_and_eur_accounts_netting_wrong_per_currency_are_refused(tenant_a, book):
    # given
    before = ledger_snapshot()
    # when: debit 100 USD, credit 100 EUR: the numbers match, the currencies do not
    response = tenant_a.post("/v1/transactions", transfer_body(book.external, book.eur_customer, 100))
    # then
    body = assert_problem(response, 422, "unbalanced_transaction")
    assert "USD" in body["detail"] and "EUR" in body["detail"]
    assert ledger_snapshot() == before


def test_a_transaction_balanced_in_each_of_two_currencies_is_accepted(tenant_a, book):
    # given
    before = ledger_snapshot()
    # when
    response = tenant_a.post("/v1/transactions", {"entries": [
        {"account": book.external["id"], "direction": "debit", "amount": 100},
        {"account": book.bob["id"], "direction": "credit", "amount": 100},
        {"account": book.eur_external["id"], "direction": "debit", "amount": 90},
        {"account": book.eur_customer["id"], "direction": "credit", "amount": 90}]})
    # then
    assert response.status_code == 201, response.json()
    assert ledger_snapshot()["entries"] == before["entries"] + 4


# --- account state ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frozen_side", ["source", "destination"])
def test_posting_on_a_frozen_account_is_refused(tenant_a, book, frozen_side):
    # given
    frozen = book.alice if frozen_side == "source" else book.bob
    assert tenant_a.post(f"/v1/accounts/{frozen['id']}/freeze", {"reason": "fraud review"}).status_code == 200
    before = ledger_snapshot()
    # when
    response = tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 100))
    # then
    body = assert_problem(response, 422, "account_not_active")
    assert frozen["id"] in body["detail"]
    assert ledger_snapshot() == before


def test_posting_on_a_closed_account_is_refused(tenant_a, book):
    # given
    assert tenant_a.post(f"/v1/accounts/{book.bob['id']}/close").status_code == 200
    before = ledger_snapshot()
    # when
    response = tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 100))
    # then
    assert_problem(response, 422, "account_not_active")
    assert ledger_snapshot() == before


def test_a_frozen_account_takes_postings_again_once_unfrozen(tenant_a, book):
    # given
    tenant_a.post(f"/v1/accounts/{book.bob['id']}/freeze")
    assert tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 100)).status_code == 422
    # when
    assert tenant_a.post(f"/v1/accounts/{book.bob['id']}/unfreeze").status_code == 200
    response = tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 100))
    # then
    assert response.status_code == 201, response.json()


def test_overdraft_of_a_no_overdraft_account_is_refused_with_the_available_amount(tenant_a, book):
    # given: alice holds 1,200
    before = ledger_snapshot()
    # when
    response = tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 5_000))
    # then
    body = assert_problem(response, 422, "insufficient_funds")
    assert body["detail"] == f"Account {book.alice['id']} has 1200 available, 5000 requested"
    assert ledger_snapshot() == before


def test_exactly_the_available_amount_may_leave(tenant_a, book):
    # when
    response = tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 1_200))
    # then
    assert response.status_code == 201, response.json()
    assert tenant_a.get(f"/v1/accounts/{book.alice['id']}/balance").json()["posted"] == 0
    assert_problem(tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 1)), 422,
                   "insufficient_funds")


def test_overdraft_past_the_limit_is_refused_with_the_available_amount(tenant_a, book, make_account):
    # given: an empty account that may go 500 below zero
    limited = make_account(allow_overdraft=True, overdraft_limit=500)
    before = ledger_snapshot()
    # when
    response = tenant_a.post("/v1/transactions", transfer_body(limited, book.bob, 501))
    # then
    body = assert_problem(response, 422, "insufficient_funds")
    assert "has 500 available, 501 requested" in body["detail"]
    assert ledger_snapshot() == before
    # and up to the limit it is accepted
    assert tenant_a.post("/v1/transactions", transfer_body(limited, book.bob, 500)).status_code == 201


# --- tenancy and existence ----------------------------------------------------------------------------------


def test_an_account_of_another_tenant_answers_404_and_leaves_an_access_denial(tenant_a, tenant_b, book,
                                                                               make_account):
    # given
    foreign = make_account(tenant_b)
    before, denials = ledger_snapshot(), AccessDenial.objects.count()
    # when
    response = tenant_a.post("/v1/transactions", transfer_body(book.alice, foreign, 100))
    # then: exactly as if it did not exist
    body = assert_problem(response, 404, "not_found")
    assert body["detail"] == f"No such account: {foreign['id']}"
    assert "entries[1].account" in error_fields(body)
    assert ledger_snapshot() == before
    denial = AccessDenial.objects.get(target=foreign["id"])
    assert AccessDenial.objects.count() == denials + 1
    assert denial.tenant_id == tenant_a.tenant.id and denial.target_tenant_id == tenant_b.tenant.id
    assert denial.request_id == response["X-Request-Id"]


def test_an_unknown_account_answers_404_without_an_access_denial(tenant_a, book):
    # given
    before, denials = ledger_snapshot(), AccessDenial.objects.count()
    # when
    response = tenant_a.post("/v1/transactions", {"entries": [
        {"account": book.alice["id"], "direction": "debit", "amount": 100},
        {"account": "acct_doesnotexist", "direction": "credit", "amount": 100}]})
    # then
    body = assert_problem(response, 404, "not_found")
    assert "entries[1].account" in error_fields(body)
    assert ledger_snapshot() == before
    assert AccessDenial.objects.count() == denials


def test_reversing_a_transaction_of_another_tenant_answers_404_and_leaves_an_access_denial(tenant_a, tenant_b,
                                                                                           book):
    # given
    before = ledger_snapshot()
    # when
    response = tenant_b.post(f"/v1/transactions/{book.funding['id']}/reverse", {"reason": "not mine"})
    # then
    assert_problem(response, 404, "not_found")
    assert ledger_snapshot() == before
    assert AccessDenial.objects.filter(target=book.funding["id"], tenant_id=tenant_b.tenant.id).count() == 1


def test_reversing_an_unknown_transaction_answers_404(tenant_a, book):
    # given
    before = ledger_snapshot()
    # when
    response = tenant_a.post("/v1/transactions/txn_doesnotexist/reverse", {"reason": "x"})
    # then
    assert_problem(response, 404, "not_found")
    assert ledger_snapshot() == before


# --- reversals ----------------------------------------------------------------------------------------------


def test_a_second_reversal_is_refused(tenant_a, book):
    # given
    original = tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 200)).json()
    assert tenant_a.post(f"/v1/transactions/{original['id']}/reverse", {"reason": "first"}).status_code == 201
    before = ledger_snapshot()
    # when
    response = tenant_a.post(f"/v1/transactions/{original['id']}/reverse", {"reason": "second"})
    # then
    assert_problem(response, 409, "already_reversed")
    assert ledger_snapshot() == before


def test_reversing_a_reversal_is_refused(tenant_a, book):
    # given
    original = tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 200)).json()
    reversal = tenant_a.post(f"/v1/transactions/{original['id']}/reverse", {"reason": "first"}).json()
    before = ledger_snapshot()
    # when
    response = tenant_a.post(f"/v1/transactions/{reversal['id']}/reverse", {"reason": "undo the undo"})
    # then
    assert_problem(response, 409, "invalid_state_transition")
    assert ledger_snapshot() == before


def test_a_reversal_that_would_overdraw_is_refused(tenant_a, book):
    # given: bob received 1,000 from alice, then passed it back to her
    original = tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 1_000)).json()
    assert tenant_a.post("/v1/transactions", transfer_body(book.bob, book.alice, 1_000)).status_code == 201
    before = ledger_snapshot()
    # when: reversing the first would take 1,000 out of an empty bob
    response = tenant_a.post(f"/v1/transactions/{original['id']}/reverse", {"reason": "late"})
    # then
    body = assert_problem(response, 422, "insufficient_funds")
    assert body["detail"] == f"Account {book.bob['id']} has 0 available, 1000 requested"
    assert ledger_snapshot() == before


def test_a_reversal_touching_a_frozen_account_is_refused(tenant_a, book):
    # given
    original = tenant_a.post("/v1/transactions", transfer_body(book.alice, book.bob, 100)).json()
    tenant_a.post(f"/v1/accounts/{book.bob['id']}/freeze")
    before = ledger_snapshot()
    # when
    response = tenant_a.post(f"/v1/transactions/{original['id']}/reverse", {"reason": "x"})
    # then
    assert_problem(response, 422, "account_not_active")
    assert ledger_snapshot() == before


# --- shape of the request -----------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -1, -1_000, 10.5, 10.0, "10", True, False, None, 2**63, 2**64, [10],
                                    {"value": 10}],
                         ids=["zero", "minus-one", "negative", "float", "integral-float", "string", "true", "false",
                              "null", "2^63", "2^64", "list", "object"])
def test_an_amount_that_is_not_a_positive_json_integer_is_a_400(tenant_a, book, amount):
    # given
    before = ledger_snapshot()
    body = transfer_body(book.external, book.bob, 100)
    body["entries"][0]["amount"] = amount
    # when
    response = tenant_a.post("/v1/transactions", body)
    # then
    problem = assert_problem(response, 400, "validation_error")
    assert error_fields(problem) == {"entries[0].amount"}, problem
    assert ledger_snapshot() == before


def test_the_largest_amount_is_accepted(tenant_a, book, make_account):
    # given: a bank account nothing has moved through yet
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    # when: 2^63-1, docs/api.md's upper bound, into an empty account
    response = tenant_a.post("/v1/transactions", transfer_body(bank, book.bob, 2**63 - 1))
    # then
    assert response.status_code == 201, response.json()
    assert tenant_a.get(f"/v1/accounts/{book.bob['id']}/balance").json()["posted"] == 2**63 - 1


@pytest.mark.parametrize("second_amount", [1, 2**63 - 1])
def test_a_posting_that_would_overflow_a_balance_is_refused_cleanly(tenant_a, book, make_account, second_amount):
    """Each amount is within bounds, but the sum would leave the 64-bit range of a balance:
    a 422 balance_out_of_range (the request itself is well-formed) and nothing written, not an
    unhandled 500."""
    # given: bob holds the largest balance there is
    bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    other_bank = make_account(account_type="external", normal_balance="debit", allow_overdraft=True)
    assert tenant_a.post("/v1/transactions", transfer_body(bank, book.bob, 2**63 - 1)).status_code == 201
    before = ledger_snapshot()
    # when
    response = tenant_a.post("/v1/transactions", transfer_body(other_bank, book.bob, second_amount))
    # then
    assert_problem(response, 422, "balance_out_of_range")
    assert ledger_snapshot() == before


@pytest.mark.parametrize("field, value", [("amount", 10.5), ("direction", "sideways"), ("direction", "DEBIT"),
                                          ("direction", 1), ("account", 12), ("currency", "usd"),
                                          ("currency", "XXX")])
def test_an_invalid_entry_field_is_a_400_with_its_path(tenant_a, book, field, value):
    # given
    before = ledger_snapshot()
    body = transfer_body(book.external, book.bob, 100)
    body["entries"][1][field] = value
    # when
    response = tenant_a.post("/v1/transactions", body)
    # then
    problem = assert_problem(response, 400, "validation_error")
    assert error_fields(problem) == {f"entries[1].{field}"}, problem
    assert ledger_snapshot() == before


@pytest.mark.parametrize("entries", [None, [], "one"], ids=["missing", "empty", "not-a-list"])
def test_missing_or_empty_entries_are_a_400(tenant_a, book, entries):
    # given
    before = ledger_snapshot()
    body = {"description": "no entries"} if entries is None else {"entries": entries}
    # when
    response = tenant_a.post("/v1/transactions", body)
    # then
    problem = assert_problem(response, 400, "validation_error")
    assert "entries" in error_fields(problem)
    assert ledger_snapshot() == before


def test_a_single_entry_is_a_400(tenant_a, book):
    # given
    before = ledger_snapshot()
    # when
    response = tenant_a.post("/v1/transactions", {"entries": [
        {"account": book.alice["id"], "direction": "debit", "amount": 100}]})
    # then
    problem = assert_problem(response, 400, "validation_error")
    assert "entries" in error_fields(problem)
    assert ledger_snapshot() == before


# --- reads ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_of", ["yesterday", "2026-01-01T00:00:00", "2026-01-01", "2026-13-01T00:00:00Z",
                                   "2026-02-30T10:00:00+00:00", "1700000000"])
def test_a_bad_as_of_is_a_400(tenant_a, book, as_of):
    # when
    response = tenant_a.get(f"/v1/accounts/{book.alice['id']}/balance", as_of=as_of)
    # then
    problem = assert_problem(response, 400, "validation_error")
    assert error_fields(problem) == {"as_of"}


def test_the_balance_of_an_unknown_account_is_a_404(tenant_a, book):
    # when
    response = tenant_a.get("/v1/accounts/acct_doesnotexist/balance")
    # then
    assert_problem(response, 404, "not_found")
